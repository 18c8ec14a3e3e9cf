"""The ``cell`` certificate: exact on the activation cell, sound beyond (checked against dense grids)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _certify_brute import box_points, check_growth, evaluate_at, region_points, tiny_net

from wdrobust.certify.bounds import BoundGraph
from wdrobust.certify.cell import CellCertificate, inscribed_radius_bound, inscribed_radius_exact
from wdrobust.losses import loss_fn
from wdrobust.nets.gradients import margin_gradients
from wdrobust.threat import lp_norm


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
@pytest.mark.parametrize("act", ["relu", "leaky"])
def test_cell_majorant_dominates_growth(act: str, norm: str) -> None:
    assert check_growth(CellCertificate, act, norm, range(8)) == 8 * 3 * 2


def patterns(net: torch.nn.Module, pts: torch.Tensor) -> torch.Tensor:
    """Activation signs of every hidden unit at the points, (P, units) bool."""
    signs, h = [], pts
    for layer in net:
        h = layer(h)
        if isinstance(layer, torch.nn.Linear):
            signs.append(h > 0)
    return torch.cat(signs[:-1], dim=1)


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_inscribed_ball_stays_in_the_cell_and_touches_its_boundary(norm: str) -> None:
    for seed in range(10):
        net = tiny_net(seed, 2, "relu").float()
        x = torch.rand(4, 2, generator=torch.Generator().manual_seed(seed))
        graph = BoundGraph(net)
        rho = inscribed_radius_exact(graph, x, norm)
        lower = inscribed_radius_bound(graph, x, norm, 2.0)
        pts = box_points(2, seed).float()
        with torch.no_grad():
            for i in range(4):
                dist = lp_norm(pts - x[i], norm)
                # the exact ball, and the bisection's (box-clipped) ball, stay in x_i's cell
                # (grid points of the box inside the ball, and a dense set of the ball itself: small balls
                # hold no grid point)
                for radius in (rho[i], lower[i]):
                    inner = region_points(x[i].double(), 0.999 * float(radius), norm, 15).float()
                    near = torch.cat([pts[dist < radius * 0.999], inner])
                    assert (lp_norm(near - x[i], norm) > 0).sum() > 100, (seed, i, float(radius))
                    assert (patterns(net, near) == patterns(net, x[i : i + 1])).all()
        # a slightly larger unclipped ball leaves the cell: the radius is not an underestimate
        d = torch.randn(4000, 2, generator=torch.Generator().manual_seed(1))
        for i in range(4):
            ring = x[i] + 1.05 * rho[i] * d / lp_norm(d, norm)[:, None]
            assert (patterns(net, ring) != patterns(net, x[i : i + 1])).any(dim=1).any()


def test_cell_growth_is_exact_inside_the_cell_linf() -> None:
    """With two classes the margin is the one m_j, so inside the cell phibar must equal its growth."""
    for seed in range(10):
        net = tiny_net(seed, 3, "relu", k=2).float()
        x = torch.rand(4, 3, generator=torch.Generator().manual_seed(seed)) * 0.8 + 0.1
        y = net(x).argmax(dim=1)
        around = CellCertificate.options_for("linf", 0.05, 3)
        res = CellCertificate(net, "linf", losses=("margin",), device="cpu", **around).run(x, y)
        _, g = margin_gradients(net, x, y)
        for i in range(4):
            t = 0.9 * float(res.cell_radius[i])
            # the maximiser of <g_j, delta> over the clipped linf ball is a corner: compare with phibar
            corner = (x[i] + t * torch.sign(g[i, 1 - int(y[i])])).clamp(0, 1)[None]
            with torch.no_grad():
                gains = loss_fn("margin", net(corner), y[i].expand(1)) - loss_fn(
                    "margin", net(x[i : i + 1]), y[i : i + 1]
                )
            best = float(gains.max())
            assert evaluate_at(res.majorants["margin"], i, np.array([t]))[0] == pytest.approx(
                best, rel=1e-4, abs=1e-6
            )


def test_cell_rejects_smooth_activations() -> None:
    net = tiny_net(0, 2, "gelu").float()
    with pytest.raises(ValueError, match="GELU"):
        CellCertificate(net, "linf", device="cpu").run(torch.rand(2, 2), torch.tensor([0, 1]))
