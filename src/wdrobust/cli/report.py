"""`wdrobust report RUN`: re-render results.json, report.md and plots from a run folder's store."""

from __future__ import annotations

from pathlib import Path

import typer

from wdrobust.cli.errors import user_errors
from wdrobust.cli.evaluate import print_outputs
from wdrobust.report import render


@user_errors
def command(
    run_dir: Path = typer.Argument(
        ..., help="Run folder written by `wdrobust evaluate` (holds store.sqlite)."
    ),
) -> None:
    """Re-render results.json, report.md and the plots of a run from its store (no model needed)."""
    print_outputs(render(run_dir))
