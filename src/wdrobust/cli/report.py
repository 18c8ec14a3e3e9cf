"""`wdrobust report RUN`: re-render a run folder's outputs from its store, every default format or the one
named by --format (the formats of ``report.writers.WRITERS``)."""

from __future__ import annotations

from pathlib import Path

import typer

from wdrobust.cli.errors import user_errors
from wdrobust.cli.evaluate import print_outputs
from wdrobust.report import render
from wdrobust.report.render import default_formats
from wdrobust.report.writers import WRITERS

#: "all" (every default format), then every registered format.
ALL = "all"
FORMATS = (ALL, *WRITERS)
_FORMAT_HELP = "; ".join(
    [f"{ALL}: {', '.join(default_formats())}"]
    + [f"{name}: {w.files}, {w.help}" for name, w in WRITERS.items()]
)
_TAKES_OUT = [name for name, w in WRITERS.items() if w.takes_out]
_OUT_HELP = (
    "; ".join(f"{name}: where to write it (default RUN/{WRITERS[name].files})" for name in _TAKES_OUT) + "."
)


@user_errors
def command(
    run_dir: Path = typer.Argument(
        ..., help="Run folder written by `wdrobust evaluate` (holds store.sqlite)."
    ),
    fmt: str = typer.Option(ALL, "--format", help=_FORMAT_HELP + "."),
    out: Path | None = typer.Option(None, help=_OUT_HELP),
) -> None:
    """Re-render results.json, report.md and the plots of a run from its store (no model needed)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown --format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if out is not None and fmt not in _TAKES_OUT:
        raise ValueError(f"--out applies only with --format {', '.join(_TAKES_OUT)}")
    print_outputs(render(run_dir, None if fmt == ALL else [fmt], out=out))
