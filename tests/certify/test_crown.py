"""Soundness of linear bound propagation and of the crown certificate, checked against brute force.

(a) relaxations: a_lo z + b_lo <= sigma(z) <= a_up z + b_up on dense samples of random intervals, for every
    activation, with default and random (alpha) lower slopes;
(b) CROWN margin bounds U >= the maximum of m_j over dense points of B(x, r) cap [0,1]^d (2-D and 3-D nets,
    5 activations x 3 norms x 3 intermediate modes x several seeds, centres and radii);
(c) the crown certificate: its growth majorants dominate the brute-force growth phi_i(t) on a grid, its
    certified radii stay below the grid's closest flip, and its upper bounds stay above the grid's exact
    lower bounds for p in {1, 2, inf}.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _certify_brute import ACTS, region_points, tiny_net
from torch import nn

from wdrobust import ThreatModel
from wdrobust.certify import CERTIFICATES
from wdrobust.certify.bounds import BoundGraph
from wdrobust.certify.bounds.activations import GELU, SIGMOID, SILU, TANH, elu, piecewise_linear
from wdrobust.certify.bounds.interval import Box
from wdrobust.certify.bounds.lipschitz import margin_cotangents
from wdrobust.certify.bounds.pool import MaxPoolRule
from wdrobust.certify.bounds.propagation import INTERMEDIATE, Crown, concretize, l1_ball_upper, margin_bounds
from wdrobust.certify.bounds.region import Region
from wdrobust.certify.bounds.relax import relax
from wdrobust.certify.bounds.rule import MODULE_RULES, Rule
from wdrobust.losses import all_losses
from wdrobust.primal import AttainedPoints, Majorant, lower_bound
from wdrobust.threat import lp_norm

ACTIVATIONS = {
    "relu": piecewise_linear(0.0),
    "leaky": piecewise_linear(0.1),
    "gelu": GELU,
    "silu": SILU,
    "elu": elu(1.0),
    "elu2": elu(2.0),
    "tanh": TANH,
    "sigmoid": SIGMOID,
}


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_relaxation_contains_the_activation(name: str) -> None:
    act = ACTIVATIONS[name]
    g = torch.Generator().manual_seed(1)
    centre = torch.randn(400, generator=g, dtype=torch.float64) * 3
    width = (
        torch.rand(400, generator=g, dtype=torch.float64)
        * torch.tensor([0.0, 1e-10, 0.5, 4.0, 12.0]).double()[torch.randint(0, 5, (400,), generator=g)]
    )
    lo, hi = centre - width / 2, centre + width / 2
    z = lo[:, None] + (hi - lo)[:, None] * torch.linspace(0, 1, 2001, dtype=torch.float64)
    sig = act.value(z)
    for slopes in (None, torch.randn(400, generator=g, dtype=torch.float64)):
        rel = relax(act, lo, hi, slopes)
        below = rel.a_lo[:, None] * z + rel.b_lo[:, None]
        above = rel.a_up[:, None] * z + rel.b_up[:, None]
        assert (below <= sig + 1e-12).all()
        assert (above >= sig - 1e-12).all()
    rel = relax(act, lo, hi)
    gap = (rel.a_up - rel.a_lo).abs() * z.abs().amax(dim=1) + (rel.b_up - rel.b_lo)
    narrow = width < 1e-6
    assert (gap[narrow] < 1e-6).all()  # nearly exact on tiny intervals


def test_l1_concretisation_is_the_linear_program_maximum() -> None:
    """concretize over B_1(x0, r) cap [0,1]^d is exact: the value of the linear program, and never above
    the box bound or the ball bound it replaced."""
    from scipy.optimize import linprog

    gen = np.random.default_rng(0)
    rows, x = gen.normal(size=(6, 5)), gen.uniform(size=5)
    lo, hi = np.clip(x - 0.4, 0, 1), np.clip(x + 0.4, 0, 1)
    a, x0, r = torch.tensor(rows)[None], torch.tensor(x)[None], torch.tensor([0.4], dtype=torch.float64)
    got = concretize(a, torch.zeros(1, 6, dtype=torch.float64), Region.ball(x0, r, "l1"))[0].numpy()
    direct = l1_ball_upper(a, x0, r, torch.tensor(lo)[None], torch.tensor(hi)[None])[0].numpy()
    np.testing.assert_array_equal(got, direct)
    box = np.clip(rows, 0, None) @ hi + np.clip(rows, None, 0) @ lo
    ball = rows @ x + 0.4 * np.abs(rows).max(axis=1)
    assert (got <= np.minimum(box, ball) + 1e-12).all()
    for row, value in zip(rows, got, strict=True):
        # variables (v, u): max row v  s.t.  |v - x| <= u, sum u <= 0.4, v in [lo, hi]
        eye = np.eye(5)
        a_ub = np.block([[eye, -eye], [-eye, -eye], [np.zeros((1, 5)), np.ones((1, 5))]])
        b_ub = np.concatenate([x, -x, [0.4]])
        lp = linprog(
            np.concatenate([-row, np.zeros(5)]),
            a_ub,
            b_ub,
            bounds=[*zip(lo, hi, strict=True), *[(0, None)] * 5],
        )
        assert value == pytest.approx(-lp.fun, abs=1e-9)


@pytest.mark.parametrize("mode", INTERMEDIATE)
@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
@pytest.mark.parametrize("act", list(ACTS))
def test_crown_margin_bounds_dominate_grid(act: str, norm: str, mode: str) -> None:
    worst = -math.inf
    for seed in range(6):
        d = 2 if seed % 3 else 3
        net = tiny_net(seed, d, act).requires_grad_(False)
        graph = BoundGraph(net)
        g = torch.Generator().manual_seed(100 + seed)
        x0 = torch.rand(4, d, generator=g, dtype=torch.float64)
        y = torch.randint(0, 3, (4,), generator=g)
        r = torch.tensor([0.03, 0.15, 0.4, 2.0], dtype=torch.float64)
        _, c = margin_cotangents(y, 3)
        upper, _, _ = margin_bounds(
            graph, Region.ball(x0, r, norm), c.double(), intermediate=mode, alpha_steps=3 * (seed % 2)
        )
        for i in range(4):
            pts = region_points(x0[i], float(r[i]), norm, 61 if d == 2 else 17)
            truth = (net(pts) @ c[i].double().T).amax(dim=0)
            worst = max(worst, float((truth - upper[i]).max()))
    assert worst <= 1e-9


def test_crown_is_tighter_than_intervals_and_exact_on_stable_cells() -> None:
    net = tiny_net(3, 2, "relu").requires_grad_(False)
    graph = BoundGraph(net)
    x0 = torch.full((2, 2), 0.4, dtype=torch.float64)
    y = torch.zeros(2, dtype=torch.long)
    _, c = margin_cotangents(y, 3)
    r = torch.tensor([1e-7, 0.2], dtype=torch.float64)
    upper, _, _ = margin_bounds(graph, Region.ball(x0, r, "linf"), c.double(), intermediate="crown")
    interval = graph.margin_upper(graph.bounds(Region.ball(x0, r, "linf")), c.double())
    assert (upper <= interval + 1e-12).all()
    exact_value = (net(x0[:1]) @ c[0].double().T)[0]
    assert torch.allclose(upper[0], exact_value, atol=1e-5)  # a tiny ball: the bound is the value


def _phi_on_grid(model: nn.Module, x: torch.Tensor, y: torch.Tensor, pts: torch.Tensor, norm: str, loss: str):
    """Brute-force growth: for each sample, distances (P,) to the grid points and loss gains there."""
    with torch.no_grad():
        base = all_losses(model(x), y, (loss,))[loss]
        out = []
        for i in range(x.shape[0]):
            val = all_losses(model(pts), y[i].expand(pts.shape[0]), (loss,))[loss]
            out.append((lp_norm(pts - x[i], norm), val - base[i]))
    return out


def _row(major: Majorant, i: int, copies: int) -> Majorant:
    """Sample i's majorant repeated ``copies`` times (to evaluate it at many distances at once)."""
    take = np.full(copies, i)
    return Majorant(major.knots[take], major.slopes[take], major.cap[take], jumps=major.jumps[take])


def _check_against_grid(res, net: nn.Module, x, y, pts, norm: str, losses: tuple[str, ...]) -> dict:
    """Assert that the result's majorants of ``losses`` lie above every grid point's gain and its certified
    radii below the distance of every misclassified grid point; returns the grid's (distances, gains)
    per loss (``_phi_on_grid``)."""
    on_grid = {loss: _phi_on_grid(net, x, y, pts, norm, loss) for loss in losses}
    for loss in losses:
        for i, (dist, gain) in enumerate(on_grid[loss]):
            bound = _row(res.majorants[loss], i, dist.shape[0])(dist.double().numpy())
            assert (gain.double().numpy() <= bound + 1e-5 * (1 + np.abs(bound))).all()
    with torch.no_grad():
        wrong = net(pts).argmax(dim=1)
    for i in range(x.shape[0]):
        flips = pts[wrong != y[i]]
        if flips.shape[0]:
            assert res.certified_radius[i] <= float(lp_norm(flips - x[i], norm).min()) + 1e-6
    return on_grid


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
@pytest.mark.parametrize("act", ["relu", "gelu", "silu", "leaky", "elu"])
def test_crown_certificate_dominates_brute_force(act: str, norm: str) -> None:
    for seed in range(3):
        net = tiny_net(seed + 20, 2, act).float().requires_grad_(False)
        g = torch.Generator().manual_seed(seed)
        x = torch.rand(6, 2, generator=g)
        y = net(x).argmax(dim=1)
        y[::3] = (y[::3] + 1) % 3  # some misclassified samples
        pts = torch.cartesian_prod(torch.linspace(0, 1, 121), torch.linspace(0, 1, 121))
        cert = CERTIFICATES["crown"](net, norm, losses=("ce", "margin", "zero_one"), radii=[0.02, 0.05, 0.2])
        res = cert.run(x, y)
        assert res.sound
        on_grid = _check_against_grid(res, net, x, y, pts, norm, ("ce", "margin"))
        # the upper bound stays above the exact value of the grid's distribution (a lower bound)
        for p in (1.0, 2.0, math.inf):
            t = ThreatModel(norm, 0.05, p)
            for loss in ("ce", "margin"):
                dist_gain = on_grid[loss]
                points = AttainedPoints(
                    np.stack([d.numpy() for d, _ in dist_gain]),
                    np.stack([gg.double().numpy() for _, gg in dist_gain]),
                )
                lb = lower_bound(points, t).value
                assert res.upper_bound(loss, t).value >= lb - 1e-6
            assert res.upper_bound("zero_one", t).risk >= 0


def test_crown_on_a_cnn_runs_and_beats_local() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 4, 4, stride=2, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 4 * 4, 16),
        nn.ReLU(),
        nn.Linear(16, 3),
    ).eval()
    x = torch.rand(5, 1, 8, 8)
    y = net(x).argmax(dim=1)
    threat = ThreatModel("linf", 0.01, p=math.inf)
    crown, local = (
        CERTIFICATES[name](
            net, "linf", losses=("ce", "zero_one"), **CERTIFICATES[name].options_for("linf", 0.01, 64)
        ).run(x, y)
        for name in ("crown", "local")
    )
    assert crown.upper_bound("ce", threat).value <= local.upper_bound("ce", threat).value + 1e-9
    assert (crown.certified_radius >= 0).all()


def test_crown_refuses_bad_options() -> None:
    net = tiny_net(0, 2, "relu").float()
    with pytest.raises(ValueError, match="intermediate"):
        CERTIFICATES["crown"](net, "linf", intermediate="exact")
    with pytest.raises(ValueError, match="alpha_steps"):
        CERTIFICATES["crown"](net, "linf", alpha_steps=-1)
    with pytest.raises(ValueError, match="not used when radii are given"):  # an ignored option is an error
        CERTIFICATES["crown"](net, "linf", radii=[0.1, 1.0], shells=4)
    assert CERTIFICATES["crown"](net, "linf", shells=4).shell_radii(2).size == 4


def test_crown_majorant_at_eps_reads_the_ball_of_eps() -> None:
    """p = inf reads phibar(eps) on the shell (r_k-1, eps]: the staircase must jump exactly at the radii
    (float64 knots), so the margin majorant at eps equals the CROWN bound over B(x_i, eps) (plus slack)."""
    net = tiny_net(5, 2, "relu").float().requires_grad_(False)
    x = torch.rand(4, 2, generator=torch.Generator().manual_seed(3))
    y = net(x).argmax(dim=1)
    eps = 0.1
    cert = CERTIFICATES["crown"](net, "linf", losses=("margin",), radii=[eps], lipschitz=False)
    res = cert.run(x, y)
    _, c = margin_cotangents(y, 3)
    upper, _, _ = margin_bounds(
        cert.graph(), Region.ball(x.double(), torch.full((4,), eps, dtype=torch.float64), "linf"), c.double()
    )
    at_eps = res.majorants["margin"](np.full(4, eps))
    direct = upper.amax(dim=1).numpy() - res.clean_loss["margin"]
    np.testing.assert_allclose(at_eps, direct, rtol=1e-4, atol=1e-4)


def test_a_verified_eps_ball_counts_as_robust_at_p_inf() -> None:
    """A sample whose closed eps ball is verified (every CROWN margin bound < 0) is certified robust at
    p = inf, even without bisection: its certified radius exceeds eps."""
    net = tiny_net(5, 2, "relu").float().requires_grad_(False)
    x = torch.rand(32, 2, generator=torch.Generator().manual_seed(4))
    y = net(x).argmax(dim=1)
    eps = 0.02
    threat = ThreatModel("linf", eps, math.inf)
    cert = CERTIFICATES["crown"](net, "linf", losses=("zero_one",), radii=[eps], bisection=0, lipschitz=False)
    res = cert.run(x, y)
    _, c = margin_cotangents(y, 3)
    upper, _, _ = margin_bounds(
        cert.graph(), Region.ball(x.double(), torch.full((32,), eps, dtype=torch.float64), "linf"), c.double()
    )
    verified = (upper < -1e-3).all(dim=1).numpy()
    assert verified.any()
    assert (res.certified_radius[verified] > eps).all()
    assert 1 - res.upper_bound("zero_one", threat).risk >= verified.mean()


def test_crown_names_an_operation_without_a_linear_rule(monkeypatch) -> None:
    class Odd(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    class IntervalOnly(Rule):  # a nonlinear rule with interval bounds and no linear relaxation
        nonlinear = True

    monkeypatch.setitem(MODULE_RULES, Odd, IntervalOnly)
    net = nn.Sequential(nn.Linear(2, 4), Odd(), nn.Linear(4, 3))
    with pytest.raises(ValueError, match=r"Odd.*no linear bound rule"):
        CERTIFICATES["crown"](net.eval(), "linf")


@pytest.mark.parametrize("geometry", [(2, 2, 0), (3, 1, 1), (3, 2, 1)])
def test_max_pool_planes_contain_the_max(geometry: tuple[int, int, int]) -> None:
    """y >= x_w* and y <= the upper plane at dense random points of random boxes, for every spec sign:
    lam . maxpool(x) <= coef . x + bias for lam of both signs."""
    k, s, p = geometry
    g = torch.Generator().manual_seed(k + 10 * s + p)
    pool = nn.MaxPool2d(k, s, p)
    rule = MaxPoolRule(pool, "pool")
    centre = torch.randn(3, 2, 5, 5, generator=g, dtype=torch.float64)
    radius = torch.rand(3, 2, 5, 5, generator=g, dtype=torch.float64) * torch.rand(3, 1, 1, 1, generator=g)
    box = Box(centre - radius, centre + radius)
    rule.forward(box)
    rel = rule.relax([box])
    assert rel.exact.any() and not rel.exact.all()
    lam = torch.randn(3, 4, *pool(centre).shape[1:], generator=g, dtype=torch.float64)
    (coef, *_), bias = rule.linear_backward(lam, rel)
    for _ in range(50):
        x = box.lo + (box.hi - box.lo) * torch.rand(box.lo.shape, generator=g, dtype=torch.float64) ** 0.3
        x = torch.where(torch.rand(x.shape, generator=g) < 0.3, box.hi, x)  # corners too
        value = (lam * pool(x).unsqueeze(1)).flatten(2).sum(dim=2)
        plane = (coef * x.unsqueeze(1)).flatten(2).sum(dim=2) + bias
        assert (value <= plane + 1e-12).all()


class Rows(nn.Module):
    """(B, 3) -> (B, 1, 1, 3): a 3-pixel image."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(-1, 1, 1, 3)


@pytest.mark.parametrize("mode", INTERMEDIATE)
@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_crown_bounds_max_pool_nets_soundly(norm: str, mode: str) -> None:
    """CROWN margin bounds of a conv + ReLU + MaxPool net on [0,1]^3 dominate a dense grid of each ball."""
    worst = -math.inf
    for seed in range(4):
        torch.manual_seed(seed)
        net = nn.Sequential(
            Rows(),
            nn.Conv2d(1, 3, (1, 2), padding=(0, 1)),
            nn.ReLU(),
            nn.MaxPool2d((1, 2), stride=1),
            nn.Flatten(),
            nn.Linear(9, 5),
            nn.Tanh(),
            nn.Linear(5, 3),
        )
        with torch.no_grad():
            for m in net:
                if isinstance(m, (nn.Linear, nn.Conv2d)):
                    m.weight.mul_(3.0)
        net = net.double().eval().requires_grad_(False)
        graph = BoundGraph(net)
        g = torch.Generator().manual_seed(200 + seed)
        x0 = torch.rand(4, 3, generator=g, dtype=torch.float64)
        y = torch.randint(0, 3, (4,), generator=g)
        r = torch.tensor([0.02, 0.1, 0.3, 2.0], dtype=torch.float64)
        _, c = margin_cotangents(y, 3)
        upper, _, _ = margin_bounds(graph, Region.ball(x0, r, norm), c.double(), intermediate=mode)
        for i in range(4):
            pts = region_points(x0[i], float(r[i]), norm, 17)
            truth = (net(pts) @ c[i].double().T).amax(dim=0)
            worst = max(worst, float((truth - upper[i]).max()))
    assert worst <= 1e-9


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_receptive_field_pass_equals_the_dense_pass(norm: str, monkeypatch) -> None:
    """The patches backward pass of convolutional chains (bounds.patches) is the dense pass restricted to
    the receptive fields: equal bounds on a CNN whose windows are smaller than its maps (strides,
    padding, borders), and it is the path taken there."""
    torch.manual_seed(1)
    net = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 4, 4, stride=2, padding=1),
        nn.LeakyReLU(0.1),
        nn.Conv2d(4, 3, 3, padding=0),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(3 * 6 * 6, 3),
    )
    graph = BoundGraph(net.double().eval().requires_grad_(False))
    x = torch.rand(3, 2, 16, 16, dtype=torch.float64)
    r = torch.tensor([0.01, 0.03, 0.1], dtype=torch.float64) * {"linf": 1, "l2": 4, "l1": 20}[norm]
    _, c = margin_cotangents(torch.tensor([0, 1, 2]), 3)
    calls = []
    patch_upper = Crown._patch_upper
    monkeypatch.setattr(Crown, "_patch_upper", lambda *a: calls.append(1) or patch_upper(*a))
    fast, _, _ = margin_bounds(graph, Region.ball(x, r, norm), c.double(), intermediate="crown")
    assert calls
    monkeypatch.setattr(Crown, "_chain", lambda self, node: None)
    dense, _, _ = margin_bounds(graph, Region.ball(x, r, norm), c.double(), intermediate="crown")
    torch.testing.assert_close(fast, dense, rtol=0, atol=1e-10)


def test_p_inf_alone_bounds_the_whole_box_by_intervals(monkeypatch) -> None:
    """With orders (inf,) the whole box gets CROWN-IBP without alpha (its growth is never read there); the
    majorants agree with the default run's up to the largest inner radius, and stay sound beyond it."""
    import wdrobust.certify.crown as crown_module

    net = tiny_net(7, 2, "relu").float().requires_grad_(False)
    x = torch.rand(5, 2, generator=torch.Generator().manual_seed(5))
    y = net(x).argmax(dim=1)
    seen: list[tuple[str, int, float]] = []

    def spy(graph, region, spec, **kw):
        seen.append((kw["intermediate"], kw["alpha_steps"], float(region.r.max())))
        return margin_bounds(graph, region, spec, **kw)

    monkeypatch.setattr(crown_module, "margin_bounds", spy)
    runs = {}
    for orders in (None, (2.0, math.inf), (math.inf,)):
        seen.clear()
        cert = CERTIFICATES["crown"](
            net, "linf", losses=("margin",), radii=[0.05, 0.2], alpha_steps=3, orders=orders
        )
        runs[orders] = cert.run(x, y)
        box = [(mode, steps) for mode, steps, r in seen if r == 1.0]
        assert box == ([("ibp", 0)] if orders == (math.inf,) else [("auto", 3)])
    lazy, full = runs[(math.inf,)].majorants["margin"], runs[None].majorants["margin"]
    for t in np.linspace(0, 0.2, 41):
        np.testing.assert_allclose(lazy(np.full(5, t)), full(np.full(5, t)), rtol=1e-12)
    pts = torch.cartesian_prod(torch.linspace(0, 1, 101), torch.linspace(0, 1, 101))
    for i, (dist, gain) in enumerate(_phi_on_grid(net, x, y, pts, "linf", "margin")):
        bound = _row(lazy, i, dist.shape[0])(dist.double().numpy())
        assert (gain.double().numpy() <= bound + 1e-5 * (1 + np.abs(bound))).all()


def test_crown_refuses_orders_below_one() -> None:
    with pytest.raises(ValueError, match="orders"):
        CERTIFICATES["crown"](tiny_net(0, 2, "relu").float(), "linf", orders=(0.5,))


@pytest.mark.parametrize(
    ("act", "norm", "mode"),
    [("relu", "linf", "crown"), ("relu", "l2", "auto"), ("gelu", "linf", "auto"), ("gelu", "l2", "crown")],
)
def test_boxes_of_a_larger_ball_seed_a_smaller_one_soundly(act: str, norm: str, mode: str) -> None:
    """margin_bounds with known = the tightened boxes of a concentric larger ball: never looser than without
    them, above the grid maximum, and its tightened boxes contain the pre-activations at the grid points."""
    seeded_nets = 0
    for seed in range(6):
        net = tiny_net(40 + seed, 2, act).requires_grad_(False)
        graph = BoundGraph(net)
        g = torch.Generator().manual_seed(seed)
        x0 = torch.rand(3, 2, generator=g, dtype=torch.float64)
        y = torch.randint(0, 3, (3,), generator=g)
        _, c = margin_cotangents(y, 3)
        small, large = torch.full((3,), 0.1, dtype=torch.float64), torch.full((3,), 0.3, dtype=torch.float64)
        seed_boxes: dict = {}
        margin_bounds(
            graph, Region.ball(x0, large, norm), c.double(), intermediate=mode, tightened=seed_boxes
        )
        seeded_nets += bool(seed_boxes)  # one hidden layer: its boxes are the exact affine prefix's
        plain, _, _ = margin_bounds(graph, Region.ball(x0, small, norm), c.double(), intermediate=mode)
        tight: dict = {}
        seeded, _, _ = margin_bounds(
            graph,
            Region.ball(x0, small, norm),
            c.double(),
            intermediate=mode,
            known=seed_boxes,
            tightened=tight,
        )
        assert (seeded <= plain + 1e-12).all()
        for i in range(3):
            pts = region_points(x0[i], 0.1, norm, 61)
            assert ((net(pts) @ c[i].double().T).amax(dim=0) <= seeded[i] + 1e-9).all()
            values = graph.evaluate(pts)
            for node, box in tight.items():
                v = values[node]
                assert (v >= box.lo[i] - 1e-9).all() and (v <= box.hi[i] + 1e-9).all()
    assert seeded_nets >= 2


def test_p_inf_alone_bounds_the_balls_beyond_reach_by_intervals(monkeypatch) -> None:
    """With orders (inf,) and reach, the balls beyond reach get CROWN-IBP without alpha, the others the
    configured bounds (the same majorants up to reach as a run without reach); any finite order reads every
    ball; the majorants and certified radii stay sound; options_for sets reach = eps."""
    import wdrobust.certify.crown as crown_module

    assert CERTIFICATES["crown"].options_for("linf", 0.05, 2)["reach"] == 0.05
    assert "reach" not in CERTIFICATES["crown"].options_for("linf", 0.0, 2)
    net = tiny_net(8, 2, "relu").float().requires_grad_(False)
    x = torch.rand(5, 2, generator=torch.Generator().manual_seed(6))
    y = net(x).argmax(dim=1)
    seen: list[tuple[str, int, float]] = []

    def spy(graph, region, spec, **kw):
        seen.extend((kw["intermediate"], kw["alpha_steps"], float(r)) for r in region.r)
        return margin_bounds(graph, region, spec, **kw)

    monkeypatch.setattr(crown_module, "margin_bounds", spy)
    runs = {}
    for orders in ((2.0, math.inf), (math.inf,)):
        seen.clear()
        cert = CERTIFICATES["crown"](
            net, "linf", losses=("margin", "zero_one"), radii=[0.05, 0.2, 0.4], alpha_steps=3, orders=orders,
            reach=0.05,
        )  # fmt: skip
        runs[orders] = cert.run(x, y)
        balls = [(mode, steps, r) for mode, steps, r in seen if r < 1.0]
        far = {(mode, steps) for mode, steps, r in balls if r > 0.05 * (1 + 1e-6)}
        near = {(mode, steps) for mode, steps, r in balls if r <= 0.05 * (1 + 1e-6)}
        assert near == {("auto", 3)}
        assert far == ({("ibp", 0)} if orders == (math.inf,) else {("auto", 3)})
    lazy, full = runs[(math.inf,)].majorants["margin"], runs[(2.0, math.inf)].majorants["margin"]
    for t in np.linspace(0, 0.05, 11):
        np.testing.assert_allclose(lazy(np.full(5, t)), full(np.full(5, t)), rtol=1e-12)
    pts = torch.cartesian_prod(torch.linspace(0, 1, 101), torch.linspace(0, 1, 101))
    _check_against_grid(runs[(math.inf,)], net, x, y, pts, "linf", ("margin",))
