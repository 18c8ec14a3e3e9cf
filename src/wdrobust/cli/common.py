"""Options, list parsing and input loading shared by the subcommands (the data-set help texts come from
the data registry, ``wdrobust.data.DATASETS``)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
import typer
from torch import nn

from wdrobust import nets
from wdrobust._device import check_device, cpu_threads_for, torch_threads
from wdrobust._options import describe
from wdrobust.cli.errors import fail
from wdrobust.data import DATA_ENV, DATASETS, DEFAULT_DATASET
from wdrobust.data.indices import read_indices
from wdrobust.pipeline.config import split_list
from wdrobust.pipeline.inputs import load_inputs
from wdrobust.threat import NORMS, ThreatModel, parse_number

MODEL_HELP = (
    "Model file: .safetensors with its JSON sidecar; a plain .pt/.pth state_dict (or .safetensors without "
    "sidecar) with --arch; a TorchScript .pt (torch.jit.save) or torch.export archive (torch.export.save, "
    ".pt2; attacks run on both, certificates need an architecture they can read); or .onnx."
)
MODEL = typer.Option(..., help=MODEL_HELP)


def data_help() -> str:
    """The --data help: every registered data set with its help text, then the data files read by format."""
    named = ", ".join(f"{info.name} ({info.help})" for info in DATASETS.values())
    return f"{named}, an image .npz (x (N,C,H,W), y) or a .npz/.csv table."


def root_help() -> str:
    """The --root help: the registered data sets whose files are searched in the data root."""
    rooted = ", ".join(info.name for info in DATASETS.values() if info.uses_root)
    return f"Folder of the {rooted} files (default ${DATA_ENV} or ./data)."


DATA_HELP = data_help()
DATA = typer.Option(DEFAULT_DATASET, help=DATA_HELP)
ROOT_HELP = root_help()
ROOT = typer.Option(None, "--root", "--data-root", help=ROOT_HELP)
ARCH_HELP = (
    f"Architecture of a checkpoint without sidecar: {', '.join(nets.ARCHS)} (layer layouts in "
    "docs/models.md), or your own nn.Module class as SOURCE:Class, SOURCE a .py file or an importable "
    "module (e.g. my_net.py:Net; its code is run), built with the --arch-option values; the checkpoint's "
    "state dict is loaded into it (torch.load weights_only=True or safetensors: no arbitrary unpickling)."
)
ARCH = typer.Option(None, help=ARCH_HELP)
ARCH_OPTION = typer.Option(
    [],
    help="Architecture option name=value (repeatable), e.g. widths=16,32; input_shape and num_classes "
    "default to the data's (for your own class: when its constructor takes them).",
)
MEAN = typer.Option(None, help="The model was trained on (x - mean) / std: comma-separated per-channel mean.")
STD = typer.Option(None, help="Per-channel std of --mean (the model is wrapped in wdrobust.nets.Normalize).")
SPLIT = typer.Option(
    "test", help="Data split: test or train (a data file without x_test, y_test is used whole for either)."
)
NORM = typer.Option("linf", help=f"Threat norm: {', '.join(NORMS)}.")
EPS = typer.Option("0.1", help="Radius (e.g. 0.1 or 8/255).")
P = typer.Option("inf", help="Wasserstein order p in [1, inf].")
BATCH_SIZE = typer.Option(256, help="Samples per batch.")
DEVICE = typer.Option(None, help="cpu, cuda, ... (default: cuda if available).")
OFFSET = typer.Option(0, help="Index of the first sample of the split; with --n, a slice (as evaluate).")
INDICES = typer.Option(
    None,
    help="File listing the sample indices (text: integers separated by spaces, commas or lines; or .npy); "
    "replaces --offset and --n (as evaluate).",
)
THREADS = typer.Option(
    None,
    help="CPU threads for torch; 0 = all cores (default: one thread for a model under a million parameters "
    "on the CPU, where more threads cost more than they give, else all cores).",
)
PROGRESS_HELP = (
    "a bar on a terminal; elsewhere, a pipe, file or CI log, a timestamped line every "
    "$WDROBUST_PROGRESS_INTERVAL seconds, default 10"
)
QUIET = typer.Option(False, "--quiet", "-q", help=f"No progress display ({PROGRESS_HELP}).")


def comma_list(text: str, flag: str) -> tuple[str, ...]:
    """ "a, b" -> ("a", "b") with `evaluate`'s list parser; an empty item raises ValueError naming flag."""
    try:
        return split_list(text)
    except ValueError as exc:
        raise ValueError(f"{flag}: {exc}") from None


def normalization(mean: str | None, std: str | None) -> tuple[list[float], list[float]] | None:
    """--mean and --std as lists of floats (None when neither is given); ValueError when only one is, or
    their lengths differ, or a std is not positive."""
    if mean is None and std is None:
        return None
    if mean is None or std is None:
        raise ValueError("give both --mean and --std, or neither")
    m = [parse_number(v, "--mean") for v in comma_list(mean, "--mean")]
    s = [parse_number(v, "--std") for v in comma_list(std, "--std")]
    if len(m) != len(s) or any(v <= 0 for v in s):
        raise ValueError(f"--mean and --std need as many values each, std > 0; got {mean!r} and {std!r}")
    return m, s


def arch_options(arch: str | None, items: list[str]) -> dict:
    """--arch-option items parsed for --arch (``nets.parse_arch_options``); ValueError without --arch."""
    if arch is None:
        if items:
            raise ValueError("--arch-option needs --arch")
        return {}
    return nets.parse_arch_options(arch, items)


@contextlib.contextmanager
def cpu_threads(threads: int | None, model: nn.Module, device: torch.device) -> Iterator[None]:
    """The block with torch's CPU thread count set by --threads: N > 0 threads, 0 all cores (torch's
    default), None ``cpu_threads_for`` (one thread for a small model on the CPU); restored afterwards.
    ValueError for a negative count."""
    if threads is not None and threads < 0:
        raise ValueError(f"--threads must be >= 0 (0 = all cores), got {threads}")
    with cpu_threads_for(model, device) if threads is None else torch_threads(threads):
        yield


def model_and_samples(
    params: Mapping[str, Any], threat: ThreatModel | None = None
) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """The model (eval mode) and the samples x (n, *S), y (n,) that the flags of ``attack`` and
    ``certify`` select, on one device: ``params`` is the command's parsed flags (``typer.Context.params``),
    of which model, data, root, split, n, offset, indices, arch, arch_option, mean, std and device are read.
    The n samples of the split from ``offset`` on (or those listed in the ``indices`` file, in its order)
    are scaled and checked as for ``wdrobust evaluate`` (``pipeline.inputs.load_inputs``); a checkpoint
    without sidecar is built as ``arch`` with ``arch_option``; ``mean``/``std`` wrap it in ``nets.Normalize``.

    Raises ValueError for a bad device, n < 1, offset < 0 or given with indices, a bad indices file, no
    samples, inputs not finite or outside [0, 1], a ``threat`` radius beyond the samples' box, a model
    whose input shape is not the data's, and labels outside the model's classes.
    """
    dev = check_device(params["device"])
    n, offset, indices = params["n"], params["offset"], params["indices"]
    if n < 1:
        raise ValueError(f"--n must be >= 1, got {n}")
    if offset < 0:
        raise ValueError(f"--offset must be >= 0, got {offset}")
    if indices is not None and offset:
        raise ValueError("--offset and --indices both select the samples: give one of them")
    arch = params["arch"]
    inputs = load_inputs(
        params["model"],
        params["data"],
        params["split"],
        params["root"],
        n,
        dev,
        offset=offset,
        indices=None if indices is None else read_indices(indices),
        threats=() if threat is None else (threat,),
        arch=arch,
        arch_options=arch_options(arch, params["arch_option"] or []),
        normalization=normalization(params["mean"], params["std"]),
    )
    return inputs.model, inputs.x.to(dev), inputs.y.to(dev)


def list_options(names: Callable[[], list[str]], lookup: Callable[[str], Any], kind: str) -> None:
    """Print the declared options of the methods names() (``lookup(name).option_table()``) and exit: the
    eager ``--list-options``, which needs no model; a bad name is a one-line error with exit code 2."""
    try:
        tables = [(name, lookup(name).option_table()) for name in names()]
    except ValueError as exc:
        raise fail(str(exc)) from None
    for name, table in tables:
        typer.echo(f"options of {kind} {name!r}:\n{describe(table)}")
    raise typer.Exit()


def list_options_flag(
    kind: str, names: Callable[[str], list[str]], lookup: Callable[[str], Any], metavar: str, what: str
) -> Any:
    """The eager ``--list-options METAVAR`` flag of a subcommand: ``list_options`` of the methods
    ``names(value)`` (``lookup`` gives a method's class; ``kind``, attack or certificate, and ``what``, the
    help's words for the value, name them)."""

    def callback(value: str | None) -> None:
        if value is not None:
            list_options(lambda: names(value), lookup, kind)

    return typer.Option(
        None,
        "--list-options",
        metavar=metavar,
        is_eager=True,
        callback=callback,
        help=f"List the options of {what} (type, default, check) and exit.",
    )
