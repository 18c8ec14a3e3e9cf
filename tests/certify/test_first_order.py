"""The first-order estimate: slopes are loss-gradient dual norms at the data, labelled sound=False."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _certify_brute import tiny_mlp
from torch import nn

from wdrobust.certify import CERTIFICATES, FirstOrder
from wdrobust.losses import loss_fn
from wdrobust.threat import ThreatModel, lp_norm


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_slopes_are_gradient_dual_norms(norm: str) -> None:
    model = tiny_mlp(2)
    x, y = torch.rand(9, 2), torch.randint(0, 3, (9,))
    threat = ThreatModel(norm, 0.1, 2)
    res = CERTIFICATES["first-order"](model, norm, losses=("ce", "margin"), device="cpu").run(x, y)
    assert res.sound is False and all(not m.sound for m in res.majorants.values())
    for loss in ("ce", "margin"):
        xg = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(loss_fn(loss, model(xg), y).sum(), xg)
        np.testing.assert_allclose(
            res.majorants[loss].slopes[:, 0], lp_norm(g, threat.dual).numpy(), rtol=1e-5
        )


def test_first_order_underestimates_a_dead_relu() -> None:
    """At x = 0.4 the unit relu(10 (x - 0.5)) is dead: zero gradient, but the loss rises past 0.5."""
    model = nn.Sequential(nn.Linear(1, 1), nn.ReLU(), nn.Linear(1, 2)).eval()
    with torch.no_grad():
        model[0].weight.fill_(10.0)
        model[0].bias.fill_(-5.0)
        model[2].weight.copy_(torch.tensor([[0.0], [1.0]]))
        model[2].bias.zero_()
    x, y = torch.tensor([[0.4]]), torch.tensor([0])
    threat = ThreatModel("linf", 0.2, "inf")
    res = FirstOrder(model, threat.norm, losses=("ce",), device="cpu").run(x, y)
    true_gain = (loss_fn("ce", model(torch.tensor([[0.6]])), y) - loss_fn("ce", model(x), y)).item()
    assert res.majorants["ce"](0.2)[0] == 0.0 < true_gain
    assert res.upper_bound("ce", threat).sound is False
