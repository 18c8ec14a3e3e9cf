"""Training figures of the default digits MLP: accuracy, seconds, and PGD adversarial training.

Standard: wdrobust.train.fit with the default options (the checkpoint `make demo` uses). PGD: the same with
adversarial="pgd", linf eps 0.1, 10 steps. Robust accuracy is measured with a 20-step PGD at linf 0.1.
Time figures are ratios measured in this run: training seconds over the seconds of one forward+backward
pass over the whole train split, and PGD training seconds over standard training seconds.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from benchmarks.run import row
from wdrobust import data
from wdrobust.models import DEFAULT_ARCH_KWARGS, DEFAULT_TRAIN
from wdrobust.threat import ThreatModel
from wdrobust.train import accuracy, fit, pgd

PGD = {"adversarial": "pgd", "eps": 0.1, "norm": "linf", "steps": 10}


def _pass_seconds(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, repeats: int = 20) -> float:
    """Median seconds of one forward + backward pass of the cross-entropy over (x, y)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        F.cross_entropy(model(x), y).backward()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def main() -> list[dict]:
    x, y = data.load("digits", "test", device="cpu")
    x_train, y_train = data.load("digits", "train", device="cpu")
    threat = ThreatModel("linf", 0.1)
    rows = []
    fits = {}
    for name, options in (("standard", {}), ("pgd", PGD)):
        fits[name] = fit(arch_kwargs=DEFAULT_ARCH_KWARGS, device="cpu", **DEFAULT_TRAIN, **options)
        x_adv = pgd(fits[name].model, x, y, threat, steps=20, generator=torch.Generator().manual_seed(0))
        rows += [
            row(f"digits mlp {name}", "clean test accuracy", 100 * fits[name].test_accuracy, "%"),
            row(
                f"digits mlp {name}",
                "PGD-20 accuracy at linf 0.1",
                100 * accuracy(fits[name].model, x_adv, y),
                "%",
            ),
            row(f"digits mlp {name}", "training time", fits[name].seconds, "s"),
        ]
    full_pass = _pass_seconds(fits["standard"].model.train(), x_train, y_train)
    rows += [
        row(
            "digits mlp standard",
            "training time / (epochs x full-data fwd+bwd)",
            fits["standard"].seconds / (DEFAULT_TRAIN["epochs"] * full_pass),
            "x",
        ),
        row(
            "digits mlp pgd",
            "training time / standard training time",
            fits["pgd"].seconds / fits["standard"].seconds,
            "x",
        ),
    ]
    return rows
