"""Print the figures of the digits models that README.md quotes (Measured figures, Models).

    .venv/bin/python scripts/model_figures.py       # about 10 s on 2 cores

"standard" is the shipped default model (``wdrobust.models``: its fixed weights, so its figures are the
same on every machine up to the rounding of float32 kernels). "PGD-trained" is trained here with the
default model's recipe plus ``--adversarial pgd`` (linf eps 0.1, 10 PGD steps per batch), i.e. as
`wdrobust train --arch-option widths=128,64 --schedule constant --val-fraction 0 --adversarial pgd` trains
it; `cli_default()` is the clean accuracy of plain `wdrobust train` (validation split, cosine schedule),
which the README's CLI quick start quotes. A model trained here differs per CPU (torch's float32 kernels
round differently on AVX2, AVX-512 and AMX, and training amplifies it): its figures move by about a point
between machines. Clean accuracy is on the 450 test digits; PGD-20 is the robust accuracy under the
library's `pgd` attack with 20 steps at linf eps 0.1, i.e. `wdrobust attack --attack pgd --option steps=20
--eps 0.1 --n 450`. tests/test_readme.py checks the quoted figures: the shipped model's to two test digits,
the trained ones for a plausible range.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from wdrobust import data, nets
from wdrobust._device import cpu_threads_for
from wdrobust.attacks import ATTACKS
from wdrobust.models import DEFAULT_ARCH_KWARGS, DEFAULT_TRAIN, default_model_path
from wdrobust.threat import ThreatModel
from wdrobust.train import PGD_DEFAULTS, accuracy, fit

#: Model label -> the training options added to DEFAULT_TRAIN (None: the shipped default model).
MODELS: dict[str, dict[str, Any] | None] = {
    "standard": None,
    "PGD-trained": {"adversarial": "pgd", **PGD_DEFAULTS},
}
#: The PGD evaluation: linf radius and number of steps.
EPS, STEPS = 0.1, 20


def _model(name: str) -> tuple[nn.Module, float | None]:
    """The model of MODELS[name] on cpu and its training seconds (None for the shipped model)."""
    options = MODELS[name]
    if options is None:
        return nets.load(default_model_path(), device="cpu"), None
    result = fit("digits", "mlp", arch_kwargs=DEFAULT_ARCH_KWARGS, device="cpu", **DEFAULT_TRAIN, **options)
    return result.model.eval(), result.seconds


def measure(name: str) -> dict[str, float | None]:
    """Clean and PGD-20 test accuracy (%) of one model of MODELS, and its training seconds (None: shipped)."""
    model, seconds = _model(name)
    x, y = data.load("digits", "test", device="cpu")
    attack = ATTACKS["pgd"](model, ThreatModel("linf", EPS), steps=STEPS, device="cpu")
    with cpu_threads_for(model, torch.device("cpu")):
        attacked = attack.run(x, y)
    return {"clean": 100 * accuracy(model, x, y), "pgd": 100 * attacked.robust_accuracy(), "seconds": seconds}


def cli_default() -> float:
    """Clean test accuracy (%) of the digits MLP that plain `wdrobust train` trains (``fit``'s defaults)."""
    return 100 * fit("digits", "mlp", device="cpu").test_accuracy


def main() -> None:
    """Print one line of figures per model."""
    for name in MODELS:
        f = measure(name)
        trained = "shipped weights" if f["seconds"] is None else f"trained in {f['seconds']:.1f} s"
        print(f"{name} MLP: {f['clean']:.2f} % clean, {f['pgd']:.2f} % PGD-{STEPS} at linf {EPS}, {trained}",
              flush=True)  # fmt: skip
    print(f"`wdrobust train` (defaults) MLP: {cli_default():.2f} % clean", flush=True)


if __name__ == "__main__":
    main()
