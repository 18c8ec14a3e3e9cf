"""Outputs of a run from its store: the typed results (``document``; results.json, schema in
docs/evaluate.md) and the writers of every output format (``writers``: results.json, report.md, plots,
RobustBench's model_info, the per-sample CSV)."""

from wdrobust.pipeline.document import SCHEMA, Results
from wdrobust.pipeline.folder import PLOTS_DIR, REPORT_NAME, RESULTS_NAME
from wdrobust.report.render import Rendered, render
from wdrobust.report.results import build_results

__all__ = [
    "PLOTS_DIR",
    "REPORT_NAME",
    "RESULTS_NAME",
    "SCHEMA",
    "Rendered",
    "Results",
    "build_results",
    "render",
]
