"""The attack benchmark's yardsticks: the fused APGD floor computes APGD's own step, and competitors are
charged per counted backward pass (``benchmarks/bench_attacks.py``)."""

from __future__ import annotations

import sys

import pytest
import torch
from _paths import ROOT
from torch import nn

from wdrobust.attacks.autoattack import PassCounting
from wdrobust.attacks.passes import Passes
from wdrobust.attacks.steps import move

sys.path.insert(0, str(ROOT))  # the benchmarks package of the checkout
bench = pytest.importorskip("benchmarks.bench_attacks")


def test_fused_apgd_step_is_the_apgd_step_arithmetic() -> None:
    """The kernel timed as the fused floor is the linf APGD step of ``apgd_ascent``: best point and gradient
    by row mask, z = P(x + eta sign g), x_new = P(lerp(lerp(x_prev, x, 2), z, 0.75)), and |x_new - x0|."""
    g = torch.Generator().manual_seed(0)
    n, shape = 6, (2, 3, 3)
    x0 = torch.rand(n, *shape, generator=g)
    r = 0.1
    low, high = (x0 - r).clamp(min=0.0), (x0 + r).clamp(max=1.0)
    x, x_prev = (torch.clamp(x0 + r * (2 * torch.rand(n, *shape, generator=g) - 1), low, high) for _ in "ab")
    grad = torch.randn(n, *shape, generator=g)
    eta = torch.rand(n, generator=g) * 2 * r
    best_x, best_g = torch.rand(n, *shape, generator=g), torch.randn(n, *shape, generator=g)
    better = torch.tensor([True, False, True, True, False, False])
    mask = better.reshape(-1, 1, 1, 1)

    x_new, dist, kept_x, kept_g = bench.fused_apgd_step(
        x, x_prev, grad, low, high, x0, eta.reshape(-1, 1, 1, 1), best_x, best_g, mask
    )

    z = torch.clamp(move(x, eta, torch.sign(grad)), low, high)
    expected = torch.clamp(torch.lerp(torch.lerp(x_prev, x, 2.0), z, 0.75), low, high)
    assert torch.allclose(x_new, expected, atol=1e-6)
    assert torch.allclose(dist, (expected - x0).abs().flatten(1).amax(1), atol=1e-6)
    assert torch.equal(kept_x, torch.where(mask, x, best_x))
    assert torch.equal(kept_g, torch.where(mask, grad, best_g))


def test_competitors_are_charged_per_counted_backward_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    """A competitor's CPU time is divided by its batch-equivalent backward passes, counted on the logits:
    k gradient steps on n samples are k steps, and its forward-only passes are not steps."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 5)).eval()
    x = torch.rand(4, 3, 2, 2)
    y = model(x).argmax(1)

    def steps_then_evaluate(counted: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> None:
        for _ in range(steps):
            xg = x.detach().requires_grad_(True)
            torch.autograd.grad(counted(xg).sum(), xg)
        with torch.no_grad():
            counted(x)

    clock = iter([10.0, 16.0])  # 6 CPU seconds for the run
    monkeypatch.setattr(bench.time, "process_time", lambda: next(clock))
    rival = bench.Competitor("pgd", "toy", "torch", "steps", steps_then_evaluate)
    assert bench.competitor_step(model, x, y, rival, 3) == pytest.approx(2.0)


@pytest.mark.parametrize("name", ["torchattacks_pgd", "autoattack_apgd"])
def test_competitor_runs_take_a_gradient_per_step(name: str) -> None:
    """Each registered competitor runs through the pass-counting wrapper and takes at least one gradient
    per step and sample (skipped when its package is not installed)."""
    rival = next(c for c in bench.COMPETITORS if c.run.__name__ == name)
    if not bench.available(rival.package):
        pytest.skip(f"{rival.package} is not installed")
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 5)).eval()
    x = torch.rand(4, 3, 2, 2)
    passes = Passes()
    rival.run(PassCounting(model, passes, (3, 2, 2)), x, model(x).argmax(1), 5)
    assert passes.backward >= 5 * 4 and passes.forward >= passes.backward
