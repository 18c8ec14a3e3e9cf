"""Outputs of a run: results.json (schema in docs/evaluate.md), report.md and plots, from the store."""

from wdrobust.report.render import PLOTS_DIR, REPORT_NAME, RESULTS_NAME, Rendered, render
from wdrobust.report.results import SCHEMA, build_results

__all__ = ["PLOTS_DIR", "REPORT_NAME", "RESULTS_NAME", "SCHEMA", "Rendered", "build_results", "render"]
