"""Print the figures of the trained digits models that README.md quotes (Measured figures, Models).

    .venv/bin/python scripts/model_figures.py       # about 10 s on 2 cores

Both MLPs are trained with the recipe of the cached default model of `wdrobust evaluate` (DEFAULT_TRAIN:
constant learning rate 1e-3, all 1347 training digits; the standard one is that model), i.e. as
`wdrobust train --schedule constant --val-fraction 0 --lr 0.001` trains them: standard, and
`--adversarial pgd` (linf eps 0.1, 10 PGD steps per batch). `cli_default()` is the clean accuracy of
plain `wdrobust train` (validation split, cosine schedule), which the README's CLI quick start quotes. Clean
accuracy is on the 450 test digits; PGD-20 is the robust accuracy under the library's `pgd` attack with 20
steps at linf eps 0.1, i.e. `wdrobust attack --attack pgd --option steps=20 --eps 0.1 --n 450`.
tests/test_readme.py recomputes the standard model's figures and checks that the README quotes them.
"""

from __future__ import annotations

from typing import Any

import torch

from wdrobust import data
from wdrobust._device import cpu_threads_for
from wdrobust.attacks import ATTACKS
from wdrobust.models import DEFAULT_ARCH_KWARGS, DEFAULT_TRAIN
from wdrobust.threat import ThreatModel
from wdrobust.train import PGD_DEFAULTS, fit

#: Model label -> the training options added to DEFAULT_TRAIN.
MODELS: dict[str, dict[str, Any]] = {"standard": {}, "PGD-trained": {"adversarial": "pgd", **PGD_DEFAULTS}}
#: The PGD evaluation: linf radius and number of steps.
EPS, STEPS = 0.1, 20


def measure(model: str) -> dict[str, float]:
    """Train one model of MODELS on cpu; its clean and PGD-20 test accuracy (%) and training seconds."""
    result = fit(
        "digits", "mlp", arch_kwargs=DEFAULT_ARCH_KWARGS, device="cpu", **DEFAULT_TRAIN, **MODELS[model]
    )
    x, y = data.load("digits", "test", device="cpu")
    attack = ATTACKS["pgd"](result.model, ThreatModel("linf", EPS), steps=STEPS, device="cpu")
    with cpu_threads_for(result.model, torch.device("cpu")):
        attacked = attack.run(x, y)
    return {
        "clean": 100 * result.test_accuracy,
        "pgd": 100 * attacked.robust_accuracy(),
        "seconds": result.seconds,
    }


def cli_default() -> float:
    """Clean test accuracy (%) of the digits MLP that plain `wdrobust train` trains (``fit``'s defaults)."""
    return 100 * fit("digits", "mlp", device="cpu").test_accuracy


def main() -> None:
    """Print one line of figures per model."""
    for model in MODELS:
        f = measure(model)
        print(
            f"{model} MLP: {f['clean']:.2f} % clean, {f['pgd']:.2f} % PGD-{STEPS} at linf {EPS}, "
            f"trained in {f['seconds']:.1f} s",
            flush=True,
        )
    print(f"`wdrobust train` (defaults) MLP: {cli_default():.2f} % clean", flush=True)


if __name__ == "__main__":
    main()
