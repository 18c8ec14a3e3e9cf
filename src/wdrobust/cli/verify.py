"""`wdrobust verify MODEL PROPERTY` and `wdrobust verify --instances instances.csv --out results.csv`:
VNN-COMP instances (an ONNX network and a VNN-LIB property) decided as sat / unsat / unknown / timeout."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import typer

from wdrobust._atomic import atomic_write, check_writable
from wdrobust.cli.errors import user_errors
from wdrobust.verify import run_benchmark, verify_file

#: Seconds per instance of a single MODEL PROPERTY run without --timeout.
DEFAULT_TIMEOUT = 60.0


def _check(model: Path | None, prop: Path | None, instances: Path | None, out: Path | None) -> None:
    if instances is not None and (model is not None or prop is not None):
        raise ValueError("give either MODEL PROPERTY or --instances, not both")
    if instances is None and (model is None or prop is None):
        raise ValueError("give MODEL PROPERTY (an .onnx network and a .vnnlib property) or --instances CSV")
    if instances is not None and out is None:
        raise ValueError("--instances needs --out (the results CSV)")
    for path in (model, prop, instances):
        if path is not None and not path.is_file():
            raise FileNotFoundError(2, "No such file", str(path))
    if model is not None and not model.name.lower().endswith((".onnx", ".onnx.gz")):
        raise ValueError(f"MODEL must be an ONNX network (.onnx or .onnx.gz), got {model.name}")
    if out is not None:
        check_writable(out)


@user_errors
def command(
    model: Path | None = typer.Argument(None, metavar="MODEL", help="The network (.onnx or .onnx.gz)."),
    prop: Path | None = typer.Argument(None, metavar="PROPERTY", help="The VNN-LIB property (.vnnlib[.gz])."),
    instances: Path | None = typer.Option(
        None, "--instances", help="A competition instances.csv (onnx,vnnlib,timeout rows): run them all."
    ),
    timeout: float | None = typer.Option(
        None,
        "--timeout",
        min=0.0,
        help=f"Seconds per instance (default: {DEFAULT_TIMEOUT:g}; with --instances each row's own).",
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="The result file (VNN-COMP format), or with --instances the results CSV (resumed if present).",
    ),
) -> None:
    """Attacks first (a counterexample search in the box, re-checked in float64), then the sound bounds
    cheapest first (IBP, CROWN-IBP, CROWN, alpha-CROWN), then branch and bound with the time left.
    Prints the VNN-COMP result (sat with the counterexample's inputs and outputs, unsat, unknown or
    timeout); with --instances one line per instance and the counts, appending each row to the --out CSV
    (rows already there are skipped)."""
    _check(model, prop, instances, out)
    if instances is None:
        verdict = verify_file(model, prop, DEFAULT_TIMEOUT if timeout is None else timeout)
        text = verdict.text()
        if out is not None:
            atomic_write(out, lambda tmp: tmp.write_text(text))
        typer.echo(text, nl=False)
        return
    counts: Counter[str] = Counter()
    for inst, verdict in run_benchmark(instances, out, timeout):
        counts[verdict.result] += 1
        by = f" ({verdict.by})" if verdict.by else ""
        typer.echo(f"{inst.onnx.name} {inst.vnnlib.name} {verdict.result}{by} {verdict.seconds:.1f}s")
    typer.echo(", ".join(f"{n} {r}" for r, n in sorted(counts.items())) or "every instance was already done")
