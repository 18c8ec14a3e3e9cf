"""`wdrobust train`: train a classifier on a data set and save a safetensors checkpoint."""

from pathlib import Path
from typing import Any

import typer

from wdrobust import nets
from wdrobust._atomic import check_writable
from wdrobust._device import check_device
from wdrobust.cli import common, progress
from wdrobust.cli.errors import err_console, user_errors
from wdrobust.threat import NORMS, parse_number
from wdrobust.train import (
    ADVERSARIAL,
    FIT_DEFAULTS,
    MAX_AUTO_EPOCHS,
    PGD_DEFAULTS,
    SCHEDULES,
    TRAIN_DEFAULTS,
    EpochStats,
    fit,
)


def _widths(text: str) -> list[int]:
    """Parse "128,64" into [128, 64]; ValueError on anything but positive integers."""
    try:
        widths = [int(w) for w in text.split(",") if w.strip()]
    except ValueError:
        raise ValueError(f"--widths must be comma-separated integers such as 128,64, got {text!r}") from None
    if any(w < 1 for w in widths):
        raise ValueError(f"--widths must be positive, got {text!r}")
    return widths


def default_out(data: str, arch: str, adversarial: str | None) -> Path:
    """runs/models/<data>-<arch>[-<adversarial>].safetensors (a tabular file contributes its stem)."""
    suffix = f"-{adversarial}" if adversarial else ""
    return Path("runs") / "models" / f"{Path(data).stem}-{arch}{suffix}.safetensors"


@user_errors
def command(
    data: str = common.DATA,
    root: Path | None = typer.Option(None, "--root", "--data-root", help=common.ROOT_HELP),
    arch: str = typer.Option("mlp", help=f"Architecture: {', '.join(nets.ARCHS)}."),
    widths: str | None = typer.Option(None, help="mlp hidden widths / cnn channel widths, e.g. 128,64."),
    hidden: int | None = typer.Option(None, help="cnn dense layer width."),
    activation: str | None = typer.Option(None, help=f"Activation: {', '.join(nets.ACTIVATIONS)}."),
    depth: int | None = typer.Option(None, help="wide_resnet / vit_tiny depth."),
    widen_factor: int | None = typer.Option(None, help="wide_resnet widening factor."),
    epochs: int | None = typer.Option(
        None,
        help=f"Training epochs [default: about 250k sample passes, at most {MAX_AUTO_EPOCHS}: 50 on digits, "
        "5 on Fashion-MNIST].",
    ),
    lr: float = typer.Option(FIT_DEFAULTS["lr"], help="Adam learning rate (the start of the schedule)."),
    schedule: str = typer.Option(
        FIT_DEFAULTS["schedule"], help=f"Learning-rate schedule: {', '.join(SCHEDULES)}."
    ),
    val_fraction: float = typer.Option(
        FIT_DEFAULTS["val_fraction"],
        help="Share of the train split held out for validation (reported every epoch; 0: none).",
    ),
    batch_size: int = typer.Option(TRAIN_DEFAULTS["batch_size"], help="Mini-batch size."),
    seed: int = typer.Option(TRAIN_DEFAULTS["seed"], help="Seed of weights, batch order and PGD starts."),
    adversarial: str | None = typer.Option(None, help=f"Adversarial training: {', '.join(ADVERSARIAL)}."),
    eps: str | None = typer.Option(None, help="PGD radius, e.g. 0.1 or 8/255 [default: 0.1]."),
    norm: str | None = typer.Option(None, help=f"PGD threat norm: {', '.join(NORMS)} [default: linf]."),
    steps: int | None = typer.Option(None, help="PGD steps per batch [default: 10]."),
    out: Path | None = typer.Option(
        None, help="Checkpoint path (default runs/models/<data>-<arch>.safetensors)."
    ),
    device: str | None = typer.Option(None, help="cpu, cuda, cuda:1, ... (default: cuda if available)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar and no per-epoch lines."),
) -> None:
    """Train a classifier (standard or PGD adversarial training) and save it as a checkpoint.

    The checkpoint path (and its .json sidecar) is checked to be writable before training starts.
    """
    nets.check_arch(arch)
    check_device(device)
    given = {"widths": _widths(widths) if widths else None, "hidden": hidden, "activation": activation}
    given |= {"depth": depth, "widen_factor": widen_factor}
    arch_kwargs = {k: v for k, v in given.items() if v is not None}
    options: dict[str, Any] = {"epochs": epochs, "lr": lr, "batch_size": batch_size, "seed": seed}
    options |= {"schedule": schedule, "val_fraction": val_fraction}
    pgd_options = {"eps": eps, "norm": norm, "steps": steps}
    if adversarial is None and any(v is not None for v in pgd_options.values()):
        raise ValueError("--eps, --norm and --steps apply only with --adversarial pgd")
    if adversarial is not None:
        pgd_options = {k: v for k, v in pgd_options.items() if v is not None}
        options |= {"adversarial": adversarial, **PGD_DEFAULTS, **pgd_options}
        options["eps"] = parse_number(options["eps"], "eps")
    out = out or default_out(data, arch, adversarial)
    if out.suffix != ".safetensors":
        raise ValueError(f"--out must end in .safetensors, got {str(out)!r}")
    check_writable(out)
    check_writable(nets.sidecar_path(out))

    def epoch_line(stats: EpochStats) -> None:
        if not quiet:
            err_console.print(stats.line(), markup=False, highlight=False)

    with progress.bar("training", quiet, "steps") as advance:
        result = fit(
            data,
            arch,
            root=root,
            arch_kwargs=arch_kwargs,
            device=device,
            progress=advance,
            epoch_end=epoch_line,
            notice=lambda line: err_console.print(line, markup=False, highlight=False),
            **options,
        )
    nets.save(result.model, out, metadata=result.metadata, input_scaling=result.input_scaling)
    typer.echo(f"clean test accuracy: {100 * result.test_accuracy:.2f}%  (trained in {result.seconds:.1f} s)")
    typer.echo(f"checkpoint: {out}")
