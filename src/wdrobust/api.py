"""The Python entry point: ``wdrobust.evaluate(model, x, y, ...)`` for any ``nn.Module`` and tensors.

It runs the same pipeline as ``wdrobust evaluate`` (``pipeline.runner.run``: units of work, the SQLite
store, aggregation through the primal solver) on a model and samples given in memory. With ``out`` the
run folder is the resumable store of the CLI (results.json, report.md and plots are written there, and a
second call with the same arguments resumes instead of recomputing); without it the store lives in a
temporary folder that is removed afterwards. Either way the result is a ``pipeline.document.Results``: the
content of results.json, typed.

The model must take x in [0, 1] (the transport cost is measured there): a model trained on normalised
inputs is passed as ``wdrobust.nets.normalized(model, mean, std)`` (a ``Normalize`` first layer).
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from torch import nn

from wdrobust._device import resolve_device
from wdrobust.pipeline.aggregate import load_records
from wdrobust.pipeline.config import build_config, split_list
from wdrobust.pipeline.document import Results
from wdrobust.pipeline.inputs import Inputs, checked_inputs, model_arch, sample_facts
from wdrobust.pipeline.runner import run
from wdrobust.pipeline.store import STORE_NAME, Store
from wdrobust.report import build_results, render
from wdrobust.threat import ThreatModel

#: The data name recorded for samples given as tensors (unless ``data`` names them).
TENSORS = "tensors"


def _listed(value: Any) -> tuple[str, ...] | None:
    """A number, a string ("0.01,0.02") or a sequence of them as the config's tuple of texts (the
    configuration's own list parser, ``config.split_list``)."""
    if value is None:
        return None
    return split_list(value if isinstance(value, str | Sequence) else [value])


def state_sha256(model: nn.Module) -> str:
    """SHA-256 of a module's class name and state_dict (names, dtypes, shapes and bytes, in order): the
    identity of a model given from Python, checked when a run folder is resumed."""
    digest = hashlib.sha256(type(model).__qualname__.encode())
    for name, tensor in model.state_dict().items():
        t = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def model_inputs(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device, threats: Sequence[ThreatModel]
) -> Inputs:
    """The evaluation inputs of a user's model (eval mode, moved to device) and samples x (N, *S) in
    [0, 1], y (N,) (kept on the CPU, as the runner expects), checked against the ``threats`` to run, with
    the facts recorded in the store."""
    x = torch.as_tensor(x).detach().to("cpu", torch.float32)
    y = torch.as_tensor(y).detach().to("cpu").long()
    if x.ndim < 2 or y.ndim != 1 or x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise ValueError(
            f"x must be (N, *S) and y (N,) with N >= 1, got shapes {tuple(x.shape)} and {tuple(y.shape)}"
        )
    model = model.to(device).eval()
    inputs = checked_inputs(model, x, y, None, int(x.shape[0]), device, threats)
    inputs.facts = {
        "model_path": None,
        "model_sha256": state_sha256(model),
        "model_arch": model_arch(model),
        **sample_facts(inputs),
    }
    return inputs


def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    norm: str = "linf",
    eps: float | str | Sequence[float | str] = (0.01,),
    p: float | str | Sequence[float | str] = (1, 2, "inf"),
    attacks: Sequence[str] | str = ("pgd", "wda", "wda++"),
    certificates: Sequence[str] | str = ("crown", "radius"),
    losses: Sequence[str] | str = ("ce", "margin", "zero_one"),
    out: str | Path | None = None,
    batch_size: int = 150,
    seed: int = 0,
    attack_options: dict[str, dict[str, Any]] | None = None,
    certificate_options: dict[str, dict[str, Any]] | None = None,
    label: str | None = None,
    data: str = TENSORS,
    keep_points: bool = False,
    device: str | torch.device | None = None,
    threads: int | None = None,
    force: bool = False,
    quiet: bool = False,
) -> Results:
    """Sandwich the Wasserstein distributional risk of ``model`` on (x, y) for every (eps, p, loss).

    model: any nn.Module mapping x (B, *S) to logits (B, K); x (N, *S) in [0, 1]; y (N,) labels in [0, K).
    eps, p: one value or several (numbers, "8/255", "inf"); attacks / certificates / losses: registry
    names (``wdrobust.attacks.ATTACKS``, ``wdrobust.certify.CERTIFICATES``), options per name as in a
    TOML configuration: each method's declared options (``ATTACKS[name].option_table()``), checked
    before any work, the methods built by ``build_attack`` / ``build_certificate`` as in the CLI. out: a
    run folder (resumable; results.json, report.md, plots written there), or None for a temporary one.
    label names the model in the records, data names the samples. Progress goes to stderr as the CLI's
    does (a bar with ETA on a terminal; elsewhere, e.g. in a notebook or a log, a plain line every 10 s once
    a step has run that long, so a quick call prints nothing); quiet=True silences it. Bad input raises
    ValueError with a one-line message.
    Returns the results.json content as ``Results`` (``.bounds(loss, eps, p)``, ``.to_dict()``).
    """
    dev = resolve_device(device)
    with tempfile.TemporaryDirectory(prefix="wdrobust-") as scratch:
        folder = Path(out) if out is not None else Path(scratch) / "run"
        cfg = build_config(
            model=label or type(model).__name__,
            data=data,
            n=int(torch.as_tensor(y).shape[0]),
            batch_size=batch_size,
            norm=norm,
            eps=_listed(eps),
            p=_listed(p),
            losses=_listed(losses),
            attacks=_listed(attacks),
            certificates=_listed(certificates),
            attack_options=attack_options,
            certificate_options=certificate_options,
            seed=seed,
            device=str(dev),
            threads=threads,
            out=str(folder),
            quiet=quiet,
            label=label,
            keep_points=keep_points,
        )
        inputs = model_inputs(model, x, y, dev, cfg.threats())
        finish = _render if out is not None else _document
        return run(cfg, force=force, console=Console(stderr=True), finish=finish, inputs=inputs).finished


def _render(run_dir: Path) -> Results:
    """Write results.json, report.md and the plots into the run folder; the results (with the folder)."""
    return render(run_dir).document


def _document(run_dir: Path) -> Results:
    """The results of a run folder's store, nothing written (the folder is temporary: run_dir None)."""
    with Store(run_dir / STORE_NAME) as store:
        return build_results(load_records(store))
