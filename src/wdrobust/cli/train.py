"""`wdrobust train`: train a classifier on a data set and save a safetensors checkpoint."""

from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from wdrobust import nets
from wdrobust._atomic import check_writable
from wdrobust._device import check_device
from wdrobust.cli.errors import err_console, user_errors
from wdrobust.threat import NORMS, parse_number
from wdrobust.train import ADVERSARIAL, DEFAULT_TRAIN, PGD_DEFAULTS, fit


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
    data: str = typer.Option("digits", help="digits, mnist, cifar10, cifar100, or a .npz/.csv file."),
    root: Path | None = typer.Option(
        None, help="Folder of the mnist/cifar files (default $WDROBUST_DATA or ./data)."
    ),
    arch: str = typer.Option("mlp", help=f"Architecture: {', '.join(nets.ARCHS)}."),
    widths: str | None = typer.Option(None, help="mlp hidden widths / cnn channel widths, e.g. 128,64."),
    hidden: int | None = typer.Option(None, help="cnn dense layer width."),
    activation: str | None = typer.Option(None, help=f"Activation: {', '.join(nets.ACTIVATIONS)}."),
    depth: int | None = typer.Option(None, help="wide_resnet / vit_tiny depth."),
    widen_factor: int | None = typer.Option(None, help="wide_resnet widening factor."),
    epochs: int = typer.Option(DEFAULT_TRAIN["epochs"], help="Training epochs."),
    lr: float = typer.Option(DEFAULT_TRAIN["lr"], help="Adam learning rate."),
    batch_size: int = typer.Option(DEFAULT_TRAIN["batch_size"], help="Mini-batch size."),
    seed: int = typer.Option(DEFAULT_TRAIN["seed"], help="Seed of weights, batch order and PGD starts."),
    adversarial: str | None = typer.Option(None, help=f"Adversarial training: {', '.join(ADVERSARIAL)}."),
    eps: str | None = typer.Option(None, help="PGD radius, e.g. 0.1 or 8/255 [default: 0.1]."),
    norm: str | None = typer.Option(None, help=f"PGD threat norm: {', '.join(NORMS)} [default: linf]."),
    steps: int | None = typer.Option(None, help="PGD steps per batch [default: 10]."),
    out: Path | None = typer.Option(
        None, help="Checkpoint path (default runs/models/<data>-<arch>.safetensors)."
    ),
    device: str | None = typer.Option(None, help="cpu, cuda, cuda:1, ... (default: cuda if available)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
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
    with Progress(
        TextColumn("training"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        disable=quiet or not err_console.is_terminal,
        transient=True,
    ) as bar:
        task = bar.add_task("train", total=None)
        result = fit(
            data,
            arch,
            root=root,
            arch_kwargs=arch_kwargs,
            device=device,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
            **options,
        )
    nets.save(result.model, out, metadata=result.metadata, input_scaling=result.input_scaling)
    typer.echo(f"clean test accuracy: {100 * result.test_accuracy:.2f}%  (trained in {result.seconds:.1f} s)")
    typer.echo(f"checkpoint: {out}")
