"""Attack overhead: time per gradient step of an attack / time of one raw forward+backward of the same batch.

A "step" is one batch-equivalent backward pass (backward_passes / n), so the ratio charges the attack
with everything else it does per step: the forward-only evaluations, projections, candidate recording
and bookkeeping. Goal: <= 1.3. Models on CIFAR-sized inputs (3 x 32 x 32, 10 classes), eval mode, CPU.

    python -m benchmarks.run attacks
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch
import torch.nn.functional as F

from wdrobust import nets
from wdrobust.attacks import ATTACKS
from wdrobust.threat import ThreatModel

SHAPE = (3, 32, 32)
#: (arch, build options, batch size, {attack: options}); ResNet is kept small to stay within minutes.
CASES: list[tuple[str, dict[str, Any], int, dict[str, dict[str, Any]]]] = [
    (
        "mlp",
        {"widths": [256, 128]},
        256,
        {"pgd": {"steps": 20}, "apgd": {"n_iter": 20}, "wda": {"steps": 20}},
    ),
    ("cnn", {}, 64, {"pgd": {"steps": 10}, "apgd": {"n_iter": 10}, "wda": {"steps": 10}}),
    ("preact_resnet18", {}, 8, {"pgd": {"steps": 4}, "wda": {"steps": 4, "probe_steps": 1, "k": 2}}),
]


def raw_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, repeats: int = 5) -> float:
    """Median seconds of one forward + backward to the input (CE summed over the batch)."""
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        xg = x.detach().requires_grad_(True)
        loss = F.cross_entropy(model(xg), y, reduction="sum")
        torch.autograd.grad(loss, xg)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def main() -> list[dict]:
    """One row per (model, attack): the overhead ratio, plus the raw step time per model."""
    rows = []
    gen = torch.Generator().manual_seed(0)
    for arch, options, batch, attacks in CASES:
        model = nets.build(arch, input_shape=SHAPE, num_classes=10, seed=0, **options).eval()
        x = torch.rand(batch, *SHAPE, generator=gen)
        y = torch.randint(0, 10, (batch,), generator=gen)
        raw = raw_step(model, x, y)
        rows.append(
            {
                "benchmark": f"attacks/{arch}",
                "figure": f"raw fwd+bwd, batch {batch}",
                "value": raw,
                "unit": "s",
            }
        )
        for name, opts in attacks.items():
            result = ATTACKS[name](model, ThreatModel("linf", 8 / 255), batch_size=batch, **opts).run(x, y)
            per_step = result.seconds / (result.backward_passes / batch)
            rows.append(
                {
                    "benchmark": f"attacks/{arch}/{name}",
                    "figure": "time per step / raw fwd+bwd (goal <= 1.3)",
                    "value": per_step / raw,
                    "unit": "x",
                }
            )
    return rows
