"""`wdrobust report RUN`: re-render results.json, report.md and plots from a run folder's store, or write
its RobustBench-style model_info record."""

from __future__ import annotations

from pathlib import Path

import typer

from wdrobust.cli.errors import user_errors
from wdrobust.cli.evaluate import print_outputs
from wdrobust.report import render
from wdrobust.report.render import render_model_info

FORMATS = ("all", "robustbench")


@user_errors
def command(
    run_dir: Path = typer.Argument(
        ..., help="Run folder written by `wdrobust evaluate` (holds store.sqlite)."
    ),
    fmt: str = typer.Option(
        "all",
        "--format",
        help="all: results.json, report.md and plots; robustbench: a model_info JSON record "
        "(clean_acc, autoattack_acc where it ran, eps, threat_model, and the distributional figures "
        "under 'wdrobust').",
    ),
    out: Path | None = typer.Option(
        None, help="robustbench: where to write it (default RUN/model_info.json)."
    ),
) -> None:
    """Re-render results.json, report.md and the plots of a run from its store (no model needed)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown --format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if fmt == "robustbench":
        typer.echo(f"model_info: {render_model_info(run_dir, out)}")
        return
    if out is not None:
        raise ValueError("--out applies only with --format robustbench")
    print_outputs(render(run_dir))
