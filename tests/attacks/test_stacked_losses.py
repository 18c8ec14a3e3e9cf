"""attacks/stacked_losses.py: the class-major losses equal ``losses.loss_fn``, ties included."""

from __future__ import annotations

import pytest
import torch

from wdrobust.attacks.stacked_losses import stacked_losses
from wdrobust.losses import LOSSES, loss_fn


@pytest.mark.parametrize("k", [2, 3, 10, 40])
def test_stacked_losses_equal_loss_fn_ties_included(k: int) -> None:
    g = torch.Generator().manual_seed(5)
    z = torch.randn(7, 40, k, generator=g).round(decimals=0)  # integer logits: many ties
    y = torch.randint(0, k, (40,), generator=g)
    got = stacked_losses(z.transpose(1, 2), y, LOSSES)
    assert set(got) == {n for n in LOSSES if not (n == "dlr" and k < 3)}
    for name, value in got.items():
        want = torch.stack([loss_fn(name, zs, y) for zs in z])
        if name == "ce":
            assert torch.allclose(value, want, rtol=1e-6, atol=1e-6)
        else:
            assert torch.equal(value, want), name
