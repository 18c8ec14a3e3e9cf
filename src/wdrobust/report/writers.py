"""The output formats of a run, registered in one place: ``WRITERS`` maps a format name to its ``Writer``
(the files it writes, a one-line help, and the function writing them from the run's ``Sources``).

``render`` (after ``wdrobust evaluate``, the Python API with a run folder, and ``wdrobust report``) writes
every writer marked ``default``; ``wdrobust report --format NAME`` writes one, and its choices and help come
from here. A new output format is a module with its write function plus one line in ``WRITERS``.

A write function takes the sources and ``out`` (a path given with --out, only for writers that accept
one; None: the default place in the run folder) and returns the written paths by label, in order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from wdrobust.pipeline.folder import MODEL_INFO_NAME, PLOTS_DIR, REPORT_NAME, RESULTS_NAME
from wdrobust.report.io import write_json, write_text
from wdrobust.report.markdown import render_markdown
from wdrobust.report.robustbench import model_info
from wdrobust.report.samples import SAMPLES_NAME, samples_csv
from wdrobust.report.sources import Sources

#: Paths written by one writer, by label ("results", "report", "plots", ...), in the order written.
Written = dict[str, list[Path]]


@dataclass(frozen=True)
class Writer:
    """An output format: the files it writes (for help texts), a one-line help, its write function,
    whether ``render`` writes it by default, and whether it accepts --out (a single file)."""

    files: str
    help: str
    write: Callable[[Sources, Path | None], Written]
    default: bool = True
    takes_out: bool = False


def write_results(sources: Sources, out: Path | None) -> Written:
    """RUN/results.json: the typed results as their document."""
    return {"results": [write_json(sources.run_dir / RESULTS_NAME, sources.results.to_dict())]}


def write_report(sources: Sources, out: Path | None) -> Written:
    """RUN/plots/*.png, then RUN/report.md, which shows them."""
    from wdrobust.report.plots import write_plots  # lazy: matplotlib is slow to import

    run_dir = sources.run_dir
    points = sources.points()
    inputs = sources.inputs() if points else None  # the worst-case plot's clean images and classes
    plots = write_plots(sources.results, sources.records, run_dir / PLOTS_DIR, points, inputs)
    report = write_text(run_dir / REPORT_NAME, render_markdown(sources.results, plots))
    return {"report": [report], "plots": [run_dir / p for p in plots]}


def write_model_info(sources: Sources, out: Path | None) -> Written:
    """The RobustBench-style model_info record, to ``out`` (default RUN/model_info.json)."""
    path = out if out is not None else sources.run_dir / MODEL_INFO_NAME
    return {"model_info": [write_json(path, model_info(sources.results))]}


def write_samples(sources: Sources, out: Path | None) -> Written:
    """The per-sample table (``report.samples``), to ``out`` (default RUN/samples.csv)."""
    path = out if out is not None else sources.run_dir / SAMPLES_NAME
    return {"samples": [write_text(path, samples_csv(sources.records, sources.indices()))]}


WRITERS: dict[str, Writer] = {
    "results": Writer(RESULTS_NAME, "the results document (schema wdrobust/results/v1)", write_results),
    "report": Writer(f"{REPORT_NAME}, {PLOTS_DIR}/", "the tables to read, and the plots", write_report),
    "robustbench": Writer(
        MODEL_INFO_NAME,
        "a RobustBench model_info JSON record (clean_acc, autoattack_acc where it ran, eps, threat_model, "
        "and the distributional figures under 'wdrobust')",
        write_model_info,
        default=False,
        takes_out=True,
    ),
    "csv": Writer(
        SAMPLES_NAME,
        "one row per sample: index, label, clean_correct, flip_distance (best attack), certified_radius "
        "(best sound certificate) and per eps at p = inf its status (certified / attacked / open)",
        write_samples,
        default=False,
        takes_out=True,
    ),
}
