"""attacks/steps.py: the fused per-sample move equals the two-operation step."""

from __future__ import annotations

import torch

from wdrobust.attacks.steps import move


def test_move_is_the_per_sample_step() -> None:
    g = torch.Generator().manual_seed(1)
    x, u, eta = (
        torch.rand(5, 3, 4, generator=g),
        torch.randn(5, 3, 4, generator=g),
        torch.rand(5, generator=g),
    )
    assert torch.allclose(move(x, eta, u), x + eta[:, None, None] * u, atol=1e-7)
    s = torch.sign(u)  # sign steps: eta * s is exact, so the fused step equals the two-op one bit for bit
    assert torch.equal(move(x, eta, s), x + eta[:, None, None] * s)
