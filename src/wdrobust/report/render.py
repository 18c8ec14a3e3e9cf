"""Re-rendering a run's outputs from its store: results.json, report.md and plots/ (atomic writes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wdrobust.evaluate.aggregate import Records, load_records
from wdrobust.evaluate.folder import MODEL_INFO_NAME, PLOTS_DIR, REPORT_NAME, RESULTS_NAME
from wdrobust.evaluate.store import STORE_NAME, Store
from wdrobust.report.io import write_json, write_text
from wdrobust.report.markdown import render_markdown
from wdrobust.report.results import build_results
from wdrobust.report.robustbench import model_info


@dataclass
class Rendered:
    """Paths of the written outputs, and the results.json document itself."""

    results: Path
    report: Path
    plots: list[Path]
    document: dict[str, Any] = field(default_factory=dict, repr=False)


def _records(run_dir: Path) -> Records:
    store_path = run_dir / STORE_NAME
    if not store_path.is_file():
        raise FileNotFoundError(f"no wdrobust run in {run_dir} (missing {STORE_NAME})")
    with Store(store_path) as store:
        return load_records(store)


def render_model_info(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Aggregate the store of ``run_dir`` and write its RobustBench-style model_info record
    (``report.robustbench``) to ``out`` (default RUN/model_info.json)."""
    run_dir = Path(run_dir)
    document = model_info(build_results(_records(run_dir)))
    return write_json(Path(out) if out is not None else run_dir / MODEL_INFO_NAME, document)


def render(run_dir: str | Path) -> Rendered:
    """Aggregate the store of ``run_dir`` and write results.json, report.md and the plots."""
    run_dir = Path(run_dir)
    records = _records(run_dir)
    from wdrobust.report.plots import write_plots  # lazy: matplotlib is slow to import

    results = build_results(records)
    plots = write_plots(results, records, run_dir / PLOTS_DIR)
    return Rendered(
        results=write_json(run_dir / RESULTS_NAME, results),
        report=write_text(run_dir / REPORT_NAME, render_markdown(results, plots)),
        plots=[run_dir / p for p in plots],
        document=results,
    )
