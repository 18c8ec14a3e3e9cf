"""`wdrobust merge RUN_1 RUN_2 ... --out RUN`: combine the shards of an evaluation into one run folder."""

from __future__ import annotations

from pathlib import Path

import typer

from wdrobust.cli.errors import user_errors
from wdrobust.cli.evaluate import print_merged
from wdrobust.pipeline.merge import merge
from wdrobust.report import render


@user_errors
def command(
    runs: list[Path] = typer.Argument(
        ..., help="Run folders of the shards (`wdrobust evaluate --shard I/K`)."
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Merged run folder (new, or a merged folder of the run)."
    ),
    force: bool = typer.Option(
        False, "--force", help="Start the merged folder over if it holds another run (only wdrobust's files)."
    ),
) -> None:
    """Union the units of shards of one run (same configuration hash and data) into --out, then write
    results.json, report.md and plots there as an unsharded run would. Merging is idempotent: run it again
    as more shards finish; units no shard has computed yet are listed."""
    print_merged(merge(runs, out, force=force, finish=render))
