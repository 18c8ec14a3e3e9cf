"""Threat models: parsing, norms, exact projections (checked by optimality conditions), steepest ascent."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from wdrobust.threat import ThreatModel, dual_of, lp_norm, parse_number, project_ball, steepest

NORMS = ("linf", "l2", "l1")


def ball_vertices(norm: str, d: int, r: float) -> torch.Tensor:
    """Extreme points of the l1 / linf ball (the ball is their convex hull)."""
    if norm == "l1":
        eye = torch.eye(d, dtype=torch.float64)
        return torch.cat([eye, -eye]) * r
    return torch.tensor(list(itertools.product([-r, r], repeat=d)), dtype=torch.float64)


@pytest.mark.parametrize("norm", ["l1", "linf"])
@pytest.mark.parametrize("seed", range(6))
def test_polyhedral_projection_is_optimal(norm: str, seed: int) -> None:
    """u = P(v) iff <v - u, z - u> <= 0 for all z in the ball; linear in z, so the vertices suffice."""
    gen = torch.Generator().manual_seed(seed)
    n, d = 20, 5
    v = torch.randn(n, d, generator=gen, dtype=torch.float64) * 2
    r = torch.rand(n, generator=gen, dtype=torch.float64) * 2
    r[0] = 0.0
    u = project_ball(v, r, norm)
    assert (lp_norm(u, norm) <= r * (1 + 1e-12) + 1e-15).all()
    for i in range(n):
        z = ball_vertices(norm, d, float(r[i]))
        assert ((z - u[i]) @ (v[i] - u[i]) <= 1e-10).all()


def test_l2_projection_matches_scipy() -> None:
    from scipy.optimize import minimize

    gen = torch.Generator().manual_seed(0)
    v = torch.randn(6, 4, generator=gen, dtype=torch.float64)
    r = torch.tensor([0.1, 0.5, 1.0, 3.0, 0.0, 2.0], dtype=torch.float64)
    u = project_ball(v, r, "l2")
    for i in range(6):
        cons = {"type": "ineq", "fun": lambda z, i=i: float(r[i]) ** 2 - z @ z}
        best = minimize(
            lambda z, i=i: ((z - v[i].numpy()) ** 2).sum(), x0=[0.0] * 4, constraints=cons, tol=1e-12
        )
        assert float(u[i] @ u[i]) <= float(r[i]) ** 2 * (1 + 1e-12) + 1e-15
        assert float(((u[i] - v[i]) ** 2).sum()) <= best.fun * (1 + 1e-6) + 1e-9  # SLSQP: feasible to ~1e-8


def test_project_is_exact_for_linf_box_intersection_and_feasible_otherwise() -> None:
    gen = torch.Generator().manual_seed(1)
    x0 = torch.rand(30, 4, generator=gen, dtype=torch.float64)
    x = x0 + torch.randn(30, 4, generator=gen, dtype=torch.float64)
    for norm in NORMS:
        threat = ThreatModel(norm, 0.3, "inf")
        out = threat.project(x, x0, 0.3)
        assert ((out >= 0) & (out <= 1)).all()
        assert (threat.norm_of(out - x0) <= 0.3 + 1e-12).all()
    out = ThreatModel("linf", 0.3).project(x, x0, 0.3)
    lo, hi = (x0 - 0.3).clamp(min=0), (x0 + 0.3).clamp(max=1)
    assert torch.equal(out, torch.minimum(torch.maximum(x, lo), hi))


@pytest.mark.parametrize("norm", NORMS)
def test_steepest_direction_attains_dual_norm(norm: str) -> None:
    gen = torch.Generator().manual_seed(2)
    g = torch.randn(10, 3, 4, generator=gen, dtype=torch.float64)
    g[0] = 0.0
    u = steepest(g, norm)
    assert (lp_norm(u, norm) <= 1 + 1e-12).all()
    inner = (u * g).flatten(1).sum(1)
    assert torch.allclose(inner, lp_norm(g, dual_of(norm)))
    # no direction in the unit ball does better (random probes)
    probes = project_ball(torch.randn(10, 3, 4, generator=gen, dtype=torch.float64), 1.0, norm)
    assert ((probes * g).flatten(1).sum(1) <= inner + 1e-12).all()


def test_diameter_is_distance_between_opposite_corners() -> None:
    for norm in NORMS:
        threat = ThreatModel(norm, 0.1, 2)
        corners = torch.stack([torch.zeros(7), torch.ones(7)])
        assert threat.diameter(7) == pytest.approx(float(threat.norm_of(corners[1:] - corners[:1])[0]))


def test_parsing_and_properties() -> None:
    threat = ThreatModel("linf", "8/255", "inf")
    assert threat.eps == pytest.approx(8 / 255)
    assert threat.q == 1.0 and threat.dual == "l1"
    assert ThreatModel("l2", 0.5, 1).q == math.inf
    assert ThreatModel("l1", 0.5, "2").q == pytest.approx(2.0)
    assert threat.with_eps(0.1).eps == 0.1 and threat.with_eps(0.1).norm == "linf"
    assert parse_number(" 1/4 ", "x") == 0.25
    assert "eps=" in str(threat)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"norm": "l3"}, "unknown norm"),
        ({"eps": -1.0}, "eps must be >= 0"),
        ({"eps": "inf"}, "eps must be finite"),
        ({"eps": float("nan")}, "eps is NaN"),
        ({"eps": "1/0"}, "cannot parse"),
        ({"p": 0.5}, "p must be >= 1"),
        ({"p": "abc"}, "cannot parse"),
    ],
)
def test_invalid_threats_raise(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ThreatModel(**{"norm": "l2", "eps": 0.1, "p": 2.0, **kwargs})


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_lp_norm_over_two_batch_dims_matches_rows(norm: str) -> None:
    g = torch.randn(3, 4, 2, 5, generator=torch.Generator().manual_seed(0))
    both = lp_norm(g, norm, batch_dims=2)
    assert both.shape == (3, 4)
    assert torch.equal(both, lp_norm(g.reshape(12, 2, 5), norm).reshape(3, 4))
    assert torch.equal(lp_norm(g[:, :, :0], norm, batch_dims=2), torch.zeros(3, 4))
