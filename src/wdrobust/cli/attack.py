"""`wdrobust attack`: run one attack on a trained model and print its figures (a rich table)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args, get_type_hints

import typer
from rich.console import Console
from rich.table import Table

from wdrobust._atomic import check_writable
from wdrobust._options import split_assignment
from wdrobust.attacks import ATTACKS
from wdrobust.attacks.base import Attack
from wdrobust.cli import common, progress
from wdrobust.cli.errors import user_errors
from wdrobust.losses import check_loss
from wdrobust.pipeline.bounds import Summary, summarize, worst_distribution
from wdrobust.threat import ThreatModel, parse_number


def check_attack(name: str) -> str:
    """Return name if it is a registered attack, else raise ValueError naming the choices."""
    if name not in ATTACKS:
        raise ValueError(f"unknown attack {name!r}: expected one of {', '.join(ATTACKS)}")
    return name


def _parse_int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{what} expects an integer, got {text!r}") from None


def _parse_bool(text: str, what: str) -> bool:
    if text.strip().lower() not in ("true", "false"):
        raise ValueError(f"{what} expects true or false, got {text!r}")
    return text.strip().lower() == "true"


def _parse_str(text: str, what: str) -> str:
    return text


#: The option types --option parses, each with its parser (value text, what to call it in errors).
PARSERS: dict[type, Callable[[str, str], Any]] = {
    int: _parse_int,
    float: parse_number,
    bool: _parse_bool,
    str: _parse_str,
}


def option_types(cls: type[Attack]) -> dict[str, type]:
    """The keyword options of an attack class and of its bases below Attack (Attack's own options have
    their own flags), each with its type among PARSERS (``float | None`` counts as float)."""
    types: dict[str, type] = {}
    for klass in reversed([c for c in cls.__mro__ if issubclass(c, Attack) and c is not Attack]):
        if "__init__" not in vars(klass):
            continue
        hints = get_type_hints(klass.__init__)
        for name, param in inspect.signature(klass.__init__).parameters.items():
            kinds = [t for t in (hints.get(name), *get_args(hints.get(name))) if t in PARSERS]
            if param.kind is inspect.Parameter.KEYWORD_ONLY and kinds:
                types[name] = kinds[0]
    return types


def parse_options(items: list[str], attack: str) -> dict[str, Any]:
    """["steps=20", "target=dual_norm"] -> {"steps": 20, "target": "dual_norm"}, each value parsed as the
    type of the attack's option; unknown options and values of the wrong type raise ValueError."""
    types = option_types(ATTACKS[check_attack(attack)])
    options: dict[str, Any] = {}
    for item in items:
        name, text = split_assignment(item, "--option")
        if name not in types:
            raise ValueError(f"attack {attack!r} has no option {name!r}: accepted {', '.join(types)}")
        options[name] = PARSERS[types[name]](text, f"--option {name}")
    return options


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
    n: int = typer.Option(500, help="Attack n samples of the split, from --offset on."),
    offset: int = common.OFFSET,
    indices: Path | None = common.INDICES,
    seed: int = typer.Option(0, help="Seed of random starts."),
    batch_size: int = common.BATCH_SIZE,
    option: list[str] = typer.Option([], help="Attack option name=value (repeatable), e.g. steps=20."),
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
    with progress.bar(attack, quiet, "samples") as advance, common.cpu_threads(threads, net, x.device):
        runner = ATTACKS[attack](
            net,
            threat,
            seed=seed,
            batch_size=batch_size,
            device=device,
            keep_points=save is not None,
            progress=advance,
            **options,
        )
        result = runner.run(x, y)
    summary = summarize(result)
    Console().print(table(summary, x.shape[0]))
    if save is not None:
        worst_distribution(result, save_loss, x, y, device="cpu").save(save)
        typer.echo(f"saved the {save_loss} worst-case distribution to {save}")
