"""The ``local`` certificate: sound growth majorants (margin and ce) checked against dense grids."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_bounds_soundness import tiny_net

from wdrobust.certify.local import LocalCertificate
from wdrobust.losses import loss_fn
from wdrobust.threat import lp_norm


def box_points(d: int, seed: int) -> torch.Tensor:
    """A dense grid of [0,1]^2, or random points of [0,1]^3 plus its corners; (P, d) float64."""
    if d == 2:
        a = torch.linspace(0, 1, 61, dtype=torch.float64)
        return torch.stack(torch.meshgrid(a, a, indexing="ij"), dim=-1).reshape(-1, 2)
    g = torch.Generator().manual_seed(seed)
    corners = torch.cartesian_prod(*[torch.tensor([0.0, 1.0], dtype=torch.float64)] * 3)
    return torch.cat([torch.rand(6000, 3, generator=g, dtype=torch.float64), corners])


def check_growth(cert_cls: type, act: str, norm: str, seeds: range) -> int:
    """phi_i(t) <= phibar_i(t) for every grid point, both losses; returns the number of samples checked."""
    checked = 0
    for seed in seeds:
        d = 2 + seed % 2
        net = tiny_net(seed, d, act).float()  # certificates run in float32
        g = torch.Generator().manual_seed(50 + seed)
        x = torch.rand(3, d, generator=g)
        y = torch.randint(0, 3, (3,), generator=g)
        around = cert_cls.options_for(norm, 0.08, d)
        res = cert_cls(net, norm, losses=("ce", "margin"), device="cpu", **around).run(x, y)
        assert res.sound
        pts = box_points(d, seed).float()
        for loss in ("ce", "margin"):
            maj = res.majorants[loss]
            with torch.no_grad():
                for i in range(3):
                    yi = y[i].expand(len(pts))
                    gain = (
                        loss_fn(loss, net(pts), yi) - loss_fn(loss, net(x[i : i + 1]), y[i : i + 1])
                    ).numpy()
                    t = lp_norm(pts - x[i], norm).numpy()
                    bound = evaluate_at(maj, i, t)
                    assert (gain <= bound + 1e-5 * (1 + np.abs(bound))).all(), (
                        seed,
                        i,
                        loss,
                        (gain - bound).max(),
                    )
                    checked += 1
    return checked


def evaluate_at(maj, i: int, t: np.ndarray) -> np.ndarray:
    """phibar_i of a majorant at many distances t (P,)."""
    lo = np.concatenate([[0.0], maj.knots[i, :-1]])
    inside = np.clip(np.minimum(t[:, None], maj.knots[i]) - lo, 0.0, None)
    return np.minimum(maj.cap[i], inside @ maj.slopes[i])


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
@pytest.mark.parametrize("act", ["relu", "leaky", "gelu", "silu", "elu"])
def test_local_majorant_dominates_growth(act: str, norm: str) -> None:
    assert check_growth(LocalCertificate, act, norm, range(6)) == 6 * 3 * 2


def test_local_result_shapes_and_registry_fields() -> None:
    net = tiny_net(0, 3, "relu").float()
    x = torch.rand(5, 3)
    y = torch.tensor([0, 1, 2, 0, 1])
    res = LocalCertificate(net, "linf", losses=("ce", "margin", "zero_one"), device="cpu").run(x, y)
    assert res.method == "local" and res.sound
    assert res.majorants["margin"].knots[0, -1] == pytest.approx(1.0)
    assert res.certified_radius.shape == (5,)
    assert (res.certified_radius[~res.clean_correct] == 0).all()
    assert res.lipschitz.shape == (5,) and np.isfinite(res.lipschitz).all()
