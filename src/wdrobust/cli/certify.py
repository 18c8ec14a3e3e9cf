"""`wdrobust certify`: run certificates on a trained model and print their risk upper bounds (rich table)."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from wdrobust.attacks import ATTACKS
from wdrobust.certify import CERTIFICATES, Certificate, CertificateResult
from wdrobust.cli import common, progress
from wdrobust.cli.attack import check_attack
from wdrobust.cli.errors import user_errors
from wdrobust.losses import CERTIFIABLE, check_certifiable
from wdrobust.report.numbers import number, seconds
from wdrobust.threat import ThreatModel

#: Certificates that solve one program per sample: their progress bar advances per sample.
PER_SAMPLE = ("milp", "exact")
#: The certificate that reads the points an attack visited (``run(x, y, visited=...)``).
VISITED = "empirical"


def parse_methods(text: str) -> list[str]:
    """ "local,milp" -> ["local", "milp"]; "all" -> every registered certificate (those that refuse the
    model or threat are then skipped with a line naming the reason); unknown names or empty items raise
    ValueError."""
    names = list(CERTIFICATES) if text.strip() == "all" else common.comma_list(text, "--method")
    for name in names:
        if name not in CERTIFICATES:
            raise ValueError(
                f"unknown certificate {name!r}: expected one of {', '.join(CERTIFICATES)} or all"
            )
    return list(dict.fromkeys(names))


def make_certificate(name: str, model: Any, threat: ThreatModel, d: int, **kwargs: Any) -> Certificate:
    """Construct a registered certificate for the threat's norm with the options its radius eps suggests
    on inputs of dimension d (``options_for``: shell radii around eps, ...), passing only the options of
    ``kwargs`` its constructor accepts."""
    cls = CERTIFICATES[name]
    accepted = {p for c in cls.__mro__ for p in inspect.signature(c.__init__).parameters}
    options = cls.options_for(threat.norm, threat.eps, d) | {k: v for k, v in kwargs.items() if k in accepted}
    return cls(model, threat.norm, **options)


def table(rows: list[tuple[str, CertificateResult, float]], loss: str, threat: ThreatModel, n: int) -> Table:
    """One row per certificate: upper bound, sound or estimate, clean risk, seconds, note."""
    out = Table(title=f"{loss} risk upper bounds on {n} samples ({threat})")
    for col in ("method", "upper bound", "kind", "clean risk", "seconds", "note"):
        out.add_column(col, justify="right" if col in ("upper bound", "clean risk", "seconds") else "left")
    for name, result, value in rows:
        clean = float(result.clean_loss[loss].mean())
        kind = "sound" if result.sound else "estimate"
        out.add_row(name, number(value), kind, number(clean), seconds(result.seconds), result.note)
    return out


@user_errors
def command(
    model: Path = common.MODEL,
    arch: str | None = common.ARCH,
    arch_option: list[str] = common.ARCH_OPTION,
    mean: str | None = common.MEAN,
    std: str | None = common.STD,
    data: str = common.DATA,
    root: Path | None = common.ROOT,
    split: str = common.SPLIT,
    method: str = typer.Option("global,local", help=f"Comma-separated: {', '.join(CERTIFICATES)}, or all."),
    norm: str = common.NORM,
    eps: str = common.EPS,
    p: str = common.P,
    loss: str = typer.Option("ce", help=f"Loss to bound: {', '.join(CERTIFIABLE)}."),
    n: int = typer.Option(200, help="Certify n samples of the split, from --offset on."),
    offset: int = common.OFFSET,
    indices: Path | None = common.INDICES,
    batch_size: int = common.BATCH_SIZE,
    time_limit: float = typer.Option(10.0, help="milp: seconds per mixed-integer program."),
    attack: str = typer.Option(
        "pgd", help=f"empirical: the attack whose visited points it reads ({', '.join(ATTACKS)})."
    ),
    device: str | None = common.DEVICE,
    threads: int | None = common.THREADS,
    quiet: bool = common.QUIET,
) -> None:
    """Certify a model: per method, the upper bound of the WDRO risk, sound or estimate, and its time.

    empirical reads the points visited by --attack, run first on the same samples and threat. With
    --method all, the certificates that do not apply to the model or threat are skipped, each named
    with the reason on stderr."""
    threat = ThreatModel(norm, eps, p)
    check_certifiable(loss)
    names = parse_methods(method)
    check_attack(attack)
    every = method.strip() == "all"
    net, x, y = common.model_and_samples(
        model,
        data,
        root,
        split,
        n,
        device,
        offset=offset,
        indices=indices,
        arch=arch,
        arch_option=arch_option,
        mean=mean,
        std=std,
        threat=threat,
    )
    rows = []
    with common.cpu_threads(threads, net, x.device), progress.bar("certify", quiet, "samples") as advance:
        for name in names:
            try:
                extra = {}
                if name == VISITED:
                    advance(0, x.shape[0], f"{attack} (visited points)")
                    visitor = ATTACKS[attack](
                        net, threat, batch_size=batch_size, device=device, keep_points=True, progress=advance
                    )
                    extra["visited"] = visitor.run(x, y).points
                advance(0, x.shape[0], name)
                cert = make_certificate(
                    name,
                    net,
                    threat,
                    x[0].numel(),
                    losses=(loss,),
                    batch_size=1 if name in PER_SAMPLE else batch_size,
                    device=device,
                    time_limit=time_limit,
                    progress=advance,
                )
                result = cert.run(x, y, **extra)
            except ValueError as exc:  # with all: the certificate does not apply to this model or threat
                if not every:
                    raise
                typer.echo(f"skipped {name}: {str(exc).splitlines()[0]}", err=True)
                continue
            rows.append((name, result, float(result.upper_bound(loss, threat).risk)))
    Console().print(table(rows, loss, threat, x.shape[0]))
