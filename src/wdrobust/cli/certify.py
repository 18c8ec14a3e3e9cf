"""`wdrobust certify`: run certificates on a trained model and print their risk upper bounds (rich table)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from wdrobust._options import convert, split_assignment
from wdrobust.attacks import ATTACKS, attack_class, build_attack
from wdrobust.certify import (
    CERTIFICATES,
    CertificateResult,
    build_certificate,
    certificate_class,
)
from wdrobust.cli import common, progress
from wdrobust.cli.errors import user_errors
from wdrobust.losses import CERTIFIABLE, check_certifiable
from wdrobust.report.numbers import number, seconds
from wdrobust.threat import ThreatModel


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


def parse_options(items: list[str], names: list[str]) -> dict[str, dict[str, Any]]:
    """--option items -> {method: {option: value}} for the methods ``names``: "method.name=value" sets
    the option of that method, "name=value" sets it for every listed method that declares it. Values are
    converted and checked by the declarations (``Certificate.option_table``); an option no listed method
    declares, or a method that is not listed, raises ValueError."""
    options: dict[str, dict[str, Any]] = {name: {} for name in names}
    for item in items:
        key, text = split_assignment(item, "--option")
        method, dot, option = key.rpartition(".")
        if dot and method not in options:
            raise ValueError(f"--option {key}: {method!r} is not among the methods ({', '.join(names)})")
        targets = [method] if dot else [m for m in names if option in certificate_class(m).option_table()]
        if not targets:
            raise ValueError(f"--option {key}: no method among {', '.join(names)} has this option")
        for name in targets:
            table = certificate_class(name).option_table()
            options[name] |= convert(table, {option: text}, f"certificate {name!r}")
    return options


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
    ctx: typer.Context,
    model: Path = common.MODEL,
    arch: str | None = common.ARCH,
    arch_option: list[str] = common.ARCH_OPTION,
    mean: str | None = common.MEAN,
    std: str | None = common.STD,
    data: str = common.DATA,
    root: Path | None = common.ROOT,
    split: str = common.SPLIT,
    method: str = typer.Option(
        "global,local",
        help=f"Comma-separated: {', '.join(CERTIFICATES)}, or all. The default is the two quick sound ones "
        "(a first look); evaluate's default list adds first-order, cell, radius and crown.",
    ),
    norm: str = common.NORM,
    eps: str = common.EPS,
    p: str = common.P,
    loss: str = typer.Option("ce", help=f"Loss to bound: {', '.join(CERTIFIABLE)}."),
    n: int = typer.Option(
        200, help="Certify n samples of the split, from --offset on (a first look; evaluate: 450)."
    ),
    offset: int = common.OFFSET,
    indices: Path | None = common.INDICES,
    batch_size: int = common.BATCH_SIZE,
    time_limit: float = typer.Option(
        10.0, help="Seconds per program of the methods with a time_limit option (milp, exact, bab)."
    ),
    option: list[str] = typer.Option(
        [],
        help="Certificate option name=value (repeatable; every listed method that has it) or "
        "method.name=value (that method), e.g. bab.budget=5; --list-options lists them.",
    ),
    list_options_: str | None = common.list_options_flag(
        "certificate", parse_methods, certificate_class, "METHODS", "the comma-separated certificates"
    ),
    attack: str = typer.Option(
        "pgd", help=f"empirical: the attack whose visited points it reads ({', '.join(ATTACKS)})."
    ),
    device: str | None = common.DEVICE,
    threads: int | None = common.THREADS,
    quiet: bool = common.QUIET,
) -> None:
    """Certify a model: per method, the upper bound of the WDRO risk, sound or estimate, and its time.

    A certificate that reads visited points (empirical) reads those of --attack, run first on the same
    samples and threat. With --method all, the certificates that do not apply to the model or threat are
    skipped, each named with the reason on stderr."""
    names = parse_methods(method)
    threat = ThreatModel(norm, eps, p)
    check_certifiable(loss)
    attack_class(attack)
    options = parse_options(option, names)
    every = method.strip() == "all"
    net, x, y = common.model_and_samples(ctx.params, threat)
    rows = []
    with common.cpu_threads(threads, net, x.device), progress.bar("certify", quiet, "samples") as advance:
        for name in names:
            try:
                cls = certificate_class(name)
                extra = {}
                if cls.needs_points:
                    advance(0, x.shape[0], f"{attack} (visited points)")
                    visitor = build_attack(
                        attack,
                        net,
                        threat,
                        batch_size=batch_size,
                        device=device,
                        keep_points=True,
                        progress=advance,
                    )
                    extra["visited"] = visitor.run(x, y).points
                advance(0, x.shape[0], name)
                timed = {"time_limit": time_limit} if "time_limit" in cls.option_table() else {}
                cert = build_certificate(
                    name,
                    net,
                    threat.norm,
                    timed | options[name],
                    around=(threat.eps, x[0].numel()),
                    losses=(loss,),
                    orders=(threat.p,),
                    batch_size=1 if cls.per_sample_programs else batch_size,
                    device=device,
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
