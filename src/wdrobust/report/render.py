"""Re-rendering a run's outputs from its store: results.json, report.md and plots/ (atomic writes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from wdrobust.evaluate.aggregate import Records, load_records
from wdrobust.evaluate.folder import MODEL_INFO_NAME, PLOTS_DIR, REPORT_NAME, RESULTS_NAME
from wdrobust.evaluate.jobs import batches
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


def _records(run_dir: Path, with_points: bool = False) -> tuple[Records, dict[str, np.ndarray]]:
    """The run's records and (with_points, when the run stores them) every attack job's candidate points
    (N, M, *S), NaN-padded to the columns of its record."""
    store_path = run_dir / STORE_NAME
    if not store_path.is_file():
        raise FileNotFoundError(f"no wdrobust run in {run_dir} (missing {STORE_NAME})")
    with Store(store_path) as store:
        records = load_records(store)
        points: dict[str, np.ndarray] = {}
        if with_points and records.config.stores_points:
            order = range(len(batches(records.n, records.config.batch_size)))
            for job, rec in records.attacks.items():
                parts = [b.get("points") for b in store.job_arrays(job, order)]
                if all(p is not None for p in parts):
                    width = rec.t.shape[1]
                    points[job] = np.concatenate([_pad(p, width) for p in parts])
        return records, points


def _pad(points: np.ndarray, width: int) -> np.ndarray:
    """(N, M, *S) -> (N, width, *S), the added columns NaN."""
    extra = np.full((points.shape[0], width - points.shape[1], *points.shape[2:]), np.nan)
    return np.concatenate([points, extra], axis=1)


def render_model_info(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Aggregate the store of ``run_dir`` and write its RobustBench-style model_info record
    (``report.robustbench``) to ``out`` (default RUN/model_info.json)."""
    run_dir = Path(run_dir)
    document = model_info(build_results(_records(run_dir)[0]))
    return write_json(Path(out) if out is not None else run_dir / MODEL_INFO_NAME, document)


def render(run_dir: str | Path) -> Rendered:
    """Aggregate the store of ``run_dir`` and write results.json, report.md and the plots."""
    run_dir = Path(run_dir)
    records, points = _records(run_dir, with_points=True)
    from wdrobust.report.plots import write_plots  # lazy: matplotlib is slow to import

    results = build_results(records)
    plots = write_plots(results, records, run_dir / PLOTS_DIR, points)
    return Rendered(
        results=write_json(run_dir / RESULTS_NAME, results),
        report=write_text(run_dir / REPORT_NAME, render_markdown(results, plots)),
        plots=[run_dir / p for p in plots],
        document=results,
    )
