"""`wdrobust attack`: run one attack on a trained model and print its figures (a rich table)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from wdrobust._atomic import check_writable
from wdrobust.attacks import ATTACKS
from wdrobust.attacks.summary import Summary, summarize, worst_distribution
from wdrobust.cli import common
from wdrobust.cli.errors import user_errors
from wdrobust.losses import check_loss
from wdrobust.threat import ThreatModel
from wdrobust.train import cpu_threads_for


def parse_options(items: list[str]) -> dict[str, Any]:
    """["steps=20", "target=dual_norm"] -> {"steps": 20, "target": "dual_norm"} (int, float, bool or str)."""
    options: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--option must look like name=value, got {item!r}")
        value: Any = text
        for cast in (int, float):
            try:
                value = cast(text)
                break
            except ValueError:
                continue
        if text.lower() in ("true", "false"):
            value = text.lower() == "true"
        options[key.strip().replace("-", "_")] = value
    return options


def make_attack(name: str, model: Any, threat: ThreatModel, **kwargs: Any) -> Any:
    """Construct a registered attack; unknown names or options raise ValueError naming the problem."""
    if name not in ATTACKS:
        raise ValueError(f"unknown attack {name!r}: expected one of {', '.join(ATTACKS)}")
    try:
        return ATTACKS[name](model, threat, **kwargs)
    except TypeError as exc:
        raise ValueError(f"attack {name!r}: {exc}") from None


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
    model: Path = common.MODEL,
    data: str = common.DATA,
    root: Path | None = common.ROOT,
    split: str = common.SPLIT,
    attack: str = typer.Option("wda", help=f"Attack: {', '.join(ATTACKS)}."),
    norm: str = common.NORM,
    eps: str = common.EPS,
    p: str = common.P,
    n: int = typer.Option(500, help="Attack the first n samples of the split."),
    seed: int = typer.Option(0, help="Seed of random starts."),
    batch_size: int = common.BATCH_SIZE,
    option: list[str] = typer.Option([], help="Attack option name=value (repeatable), e.g. steps=20."),
    save: Path | None = typer.Option(None, help="Save the adversarial distribution (.safetensors)."),
    save_loss: str = typer.Option("zero_one", help="Loss whose worst distribution --save writes."),
    device: str | None = common.DEVICE,
) -> None:
    """Attack a model and print clean, robust and distributional accuracy, expected CE and cost."""
    threat = ThreatModel(norm, eps, p)
    if save is not None and save.suffix != ".safetensors":
        raise ValueError(f"--save must end in .safetensors, got {str(save)!r}")
    if save is not None:
        check_writable(save)
    check_loss(save_loss)
    net, x, y = common.load_inputs(model, data, root, split, n, device)
    runner = make_attack(
        attack, net, threat, seed=seed, batch_size=batch_size, device=device,
        keep_points=save is not None, **parse_options(option),
    )  # fmt: skip
    with cpu_threads_for(net, x.device):
        result = runner.run(x, y)
    summary = summarize(result)
    Console().print(table(summary, x.shape[0]))
    if save is not None:
        worst_distribution(result, save_loss, x, y, device="cpu").save(save)
        typer.echo(f"saved the {save_loss} worst-case distribution to {save}")
