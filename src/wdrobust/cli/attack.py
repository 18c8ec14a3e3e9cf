"""`wdrobust attack`: run one attack on a trained model and print its figures (a rich table)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from wdrobust._atomic import check_writable
from wdrobust._options import convert, split_assignment
from wdrobust.attacks import ATTACKS, attack_class, build_attack
from wdrobust.cli import common, progress
from wdrobust.cli.errors import user_errors
from wdrobust.losses import check_loss
from wdrobust.pipeline.bounds import Summary, summarize, worst_distribution
from wdrobust.threat import ThreatModel


def parse_options(items: list[str], attack: str) -> dict[str, Any]:
    """["steps=20", "target=dual_norm"] -> {"steps": 20, "target": "dual_norm"}: each value converted and
    checked by the attack's declaration (``Attack.option_table``); unknown options and bad values raise
    ValueError."""
    given = dict(split_assignment(item, "--option") for item in items)
    return convert(attack_class(attack).option_table(), given, f"attack {attack!r}")


def table(summary: Summary, n: int) -> Table:
    """The figures as a two-column rich table."""
    out = Table(title=f"{summary.attack} on {n} samples ({summary.threat})")
    out.add_column("figure")
    out.add_column("value", justify="right")
    ce = "n/a" if summary.expected_ce is None else f"{summary.expected_ce:.4f}"
    rows = [
        ("clean accuracy", f"{100 * summary.clean_accuracy:.2f} %"),
        ("robust accuracy (point-wise, eps)", f"{100 * summary.robust_accuracy:.2f} %"),
        ("distributional robust accuracy", f"{100 * summary.distributional_accuracy:.2f} %"),
        ("expected CE under the attack distribution", ce),
        ("budget spent (of eps^p)", f"{100 * summary.budget_spent:.1f} %"),
        ("forward passes (per sample)", f"{summary.forward_passes / n:.1f}"),
        ("backward passes (per sample)", f"{summary.backward_passes / n:.1f}"),
        ("seconds", f"{summary.seconds:.2f}"),
    ]
    for row in rows:
        out.add_row(*row)
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
    attack: str = typer.Option("wda", help=f"Attack: {', '.join(ATTACKS)}."),
    norm: str = common.NORM,
    eps: str = common.EPS,
    p: str = common.P,
    n: int = typer.Option(
        500, help="Attack n samples of the split, from --offset on (covers digits' 450, evaluate's default)."
    ),
    offset: int = common.OFFSET,
    indices: Path | None = common.INDICES,
    seed: int = typer.Option(0, help="Seed of random starts."),
    batch_size: int = common.BATCH_SIZE,
    option: list[str] = typer.Option(
        [], help="Attack option name=value (repeatable), e.g. steps=20; --list-options lists them."
    ),
    list_options_: str | None = common.list_options_flag(
        "attack", lambda name: [name], attack_class, "ATTACK", "an attack"
    ),
    save: Path | None = typer.Option(None, help="Save the adversarial distribution (.safetensors)."),
    save_loss: str = typer.Option("zero_one", help="Loss whose worst distribution --save writes."),
    device: str | None = common.DEVICE,
    threads: int | None = common.THREADS,
    quiet: bool = common.QUIET,
) -> None:
    """Attack a model and print clean, robust and distributional accuracy, expected CE and cost."""
    threat = ThreatModel(norm, eps, p)
    if save is not None and save.suffix != ".safetensors":
        raise ValueError(f"--save must end in .safetensors, got {str(save)!r}")
    if save is not None:
        check_writable(save)
    check_loss(save_loss)
    options = parse_options(option, attack)
    net, x, y = common.model_and_samples(ctx.params, threat)
    with progress.bar(attack, quiet, "samples") as advance, common.cpu_threads(threads, net, x.device):
        runner = build_attack(
            attack,
            net,
            threat,
            options,
            seed=seed,
            batch_size=batch_size,
            device=device,
            keep_points=save is not None,
            progress=advance,
        )
        result = runner.run(x, y)
    summary = summarize(result)
    Console().print(table(summary, x.shape[0]))
    if save is not None:
        worst_distribution(result, save_loss, x, y, device="cpu").save(save)
        typer.echo(f"saved the {save_loss} worst-case distribution to {save}")
