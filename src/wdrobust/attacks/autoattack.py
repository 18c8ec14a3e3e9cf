"""``autoattack``: adapter to the reference AutoAttack (PyPI package ``pyautoattack``), an optional
baseline. The package is imported only when the attack runs; the core never depends on it.

The reference returns one adversarial point per sample (x_adv); it becomes the sample's only candidate
besides x_i. It wants images (N, C, H, W): images go as they are, other inputs as (N, 1, 1, d), except
under l2 and l1, where its Square attack tiles the image with squares of side H // 5 (zero, and a division
by zero, when H < 5): there the input is viewed as (N, 1, h, d / h), h the largest divisor of d with
h <= sqrt(d) (the attacks are valid on any view: the model sees the input reshaped back), and an input
with no view of both sides >= 5 is refused. Passes are counted by wrapping the model: each forward counts
its batch size, and each backward through the logits counts it again.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from wdrobust._optional import require
from wdrobust._options import Option, one_of
from wdrobust.attacks.base import Attack
from wdrobust.attacks.batch import Batch
from wdrobust.attacks.passes import Passes

NORM_NAMES = {"linf": "Linf", "l2": "L2", "l1": "L1"}
VERSIONS = ("standard", "plus", "rand")
#: the least side of the image the reference's Square attack tiles under l2 and l1 (squares of side H // 5).
SQUARE_SIDE = 5


def reference_view(shape: tuple[int, ...], norm: str) -> tuple[int, int, int]:
    """The (C, H, W) view of samples of ``shape`` given to the reference (see the module docstring)."""
    if len(shape) == 3 and (norm == "linf" or min(shape[1:]) >= SQUARE_SIDE):
        return shape[0], shape[1], shape[2]
    d = math.prod(shape)
    if norm == "linf":
        return 1, 1, d
    h = max(k for k in range(1, math.isqrt(d) + 1) if d % k == 0)
    if h < SQUARE_SIDE:
        raise ValueError(
            f"the reference AutoAttack's Square attack under {norm} needs an image view with both sides >= "
            f"{SQUARE_SIDE}; samples of shape {tuple(shape)} ({d} features) have none"
        )
    return 1, h, d // h


class PassCounting(nn.Module):
    """model wrapped so that forward and backward passes are added to ``passes`` (per sample); inputs
    are reshaped to the model's sample shape (the reference wants images (N, C, H, W))."""

    def __init__(self, model: nn.Module, passes: Passes, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.model, self.passes, self.shape = model, passes, shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.model(x.reshape(x.shape[0], *self.shape))
        n = x.shape[0]
        self.passes.forward += n
        if z.requires_grad:
            z.register_hook(lambda grad: self._backward(n))
        return z

    def _backward(self, n: int) -> None:
        self.passes.backward += n


class AutoAttackReference(Attack):
    """The reference AutoAttack (``version`` standard, plus or rand) at the point-wise radius eps."""

    name = "autoattack"
    declared = (Option("version", str, "standard", one_of(*VERSIONS), "the reference's version"),)

    def attack_batch(self, batch: Batch) -> None:
        reference = require("pyautoattack")
        if batch.classes < 3:
            raise ValueError(
                f"the reference AutoAttack needs at least 3 classes, the model has {batch.classes}"
            )
        shape = tuple(batch.x0.shape[1:])
        images = batch.x0.reshape(batch.n, *reference_view(shape, self.threat.norm))
        adversary = reference.AutoAttack(
            PassCounting(self.model, batch.passes, shape),
            eps=self.threat.eps,
            norm=NORM_NAMES[self.threat.norm],
            seed=self.seed,
            version=self.version,
            device=batch.x0.device,
        )
        adversary.apgd_targeted.n_target_classes = adversary.fab.n_target_classes = min(9, batch.classes - 1)
        x_adv, _ = adversary.run_standard_evaluation(images, batch.y, batch_size=batch.n)
        x_adv = x_adv.reshape(batch.x0.shape).to(batch.x0.device, batch.x0.dtype)
        batch.evaluate(batch.project(x_adv, batch.all, self.threat.eps))
