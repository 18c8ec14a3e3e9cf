"""W-PGD (Bai et al. 2023): Hoelder-optimal transport weights, the global W_p projection, and every
iterate a feasible distribution of the ball."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _attack_setup import data, tiny

from wdrobust.attacks import ATTACKS
from wdrobust.attacks.w_pgd import transport_weights, w_project
from wdrobust.pipeline.bounds import summarize
from wdrobust.threat import ThreatModel, lp_norm


@pytest.mark.parametrize("p", [1.0, 1.5, 2.0, 3.0, math.inf])
def test_transport_weights_attain_the_hoelder_bound(p: float) -> None:
    g = torch.Generator().manual_seed(0)
    dual = torch.rand(50, generator=g, dtype=torch.float64) * 3
    w = transport_weights(dual, p)
    if math.isinf(p):
        assert torch.equal(w, torch.ones_like(dual))
        return
    assert w.pow(p).mean().item() == pytest.approx(1.0, rel=1e-12)
    q = math.inf if p == 1 else p / (p - 1)
    bound = dual.max() if p == 1 else dual.pow(q).mean().pow(1 / q)
    # max of mean_i dual_i w_i over mean_i w_i^p <= 1 is the q-mean of the duals (Hoelder), attained
    assert (dual * w).mean().item() == pytest.approx(bound.item(), rel=1e-10)
    other = torch.rand(200, 50, generator=g, dtype=torch.float64)
    other = other / other.pow(p).mean(1, keepdim=True).pow(1 / p)
    assert torch.all((dual * other).mean(1) <= (dual * w).mean() + 1e-12)


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
@pytest.mark.parametrize("p", [1.0, 2.0])
def test_w_project_lands_in_the_ball_and_box_and_keeps_inside_points(norm: str, p: float) -> None:
    g = torch.Generator().manual_seed(1)
    x0 = torch.rand(30, 12, generator=g)
    x = x0 + torch.randn(30, 12, generator=g)
    out = w_project(x, x0, 0.2, p, norm)
    t = lp_norm((out - x0).double(), norm)
    assert t.pow(p).mean().pow(1 / p).item() <= 0.2 * (1 + 1e-6)
    assert out.min() >= 0 and out.max() <= 1
    inside = (x0 + 1e-3 * torch.randn(30, 12, generator=g)).clamp(0, 1)
    assert torch.equal(w_project(inside, x0, 0.2, p, norm), inside)


@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("p", [1.0, 2.0])
def test_every_iterate_is_a_feasible_distribution(norm: str, p: float) -> None:
    x, y = data(n=24)
    eps = 0.1 if norm == "linf" else 0.4
    result = ATTACKS["w-pgd"](tiny(), ThreatModel(norm, eps, p), steps=8).run(x, y)
    assert result.t.shape == (24, 9)  # 8 gradient iterates and the final one, all samples each
    spent = np.mean(result.t**p, axis=0)
    assert np.all(spent <= eps**p * (1 + 1e-6)) and spent.max() > 0.5 * eps**p
    # the ball is used unevenly: samples move by different amounts (weights ~ ||g_i||_*^(q-1))
    assert result.t[:, -1].std() > 0


def test_w_pgd_at_p_inf_is_pgd_with_the_published_step() -> None:
    x, y = data(n=40)
    model = tiny()
    threat = ThreatModel("linf", 0.1)
    ours = ATTACKS["w-pgd"](model, threat, steps=10).run(x, y)
    pgd = ATTACKS["pgd"](model, threat, steps=10, step_size=1.875 / 10, random_start=False).run(x, y)
    assert summarize(ours).distributional_accuracy == pytest.approx(ours.robust_accuracy(), abs=1e-12)
    assert np.array_equal(ours.t, pgd.t) and np.array_equal(ours.gains["ce"], pgd.gains["ce"])


def test_w_pgd_rejects_bad_options() -> None:
    with pytest.raises(ValueError, match="steps"):
        ATTACKS["w-pgd"](tiny(), ThreatModel("linf", 0.1), steps=0)
    with pytest.raises(ValueError, match="differentiable"):
        ATTACKS["w-pgd"](tiny(), ThreatModel("linf", 0.1), loss="zero_one")
