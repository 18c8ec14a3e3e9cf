"""lower_bound is the exact optimum of the mixture LP; its distribution is feasible and reproduces it."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from wdrobust.primal import AttainedPoints, Distribution, lower_bound
from wdrobust.threat import ThreatModel

P_VALUES = (1.0, 1.5, 2.0, 4.0, math.inf)


def lp_optimum(t: np.ndarray, g: np.ndarray, eps: float, p: float) -> float:
    """max (1/N) sum w_ik g_ik over w_i in the simplex with (1/N) sum w_ik t_ik^p <= eps^p, by HiGHS.

    The budget row is divided by eps^p so that the solver's absolute tolerance is relative to it."""
    pts = AttainedPoints(t, g)
    n = pts.n
    use = np.isfinite(pts.t)
    cols = np.argwhere(use)
    cost = np.zeros(len(cols)) if math.isinf(p) else pts.t[use] ** p
    upper = np.full(len(cols), np.inf)
    if math.isinf(p):
        upper[pts.t[use] > eps] = 0.0
    elif eps == 0:
        upper[cost > 0] = 0.0
    a_eq = np.zeros((n, len(cols)))
    a_eq[cols[:, 0], np.arange(len(cols))] = 1.0
    budget = {} if math.isinf(p) or eps == 0 else {"A_ub": (cost / (n * eps**p))[None], "b_ub": [1.0]}
    res = linprog(
        -pts.g[use] / n,
        A_eq=a_eq,
        b_eq=np.ones(n),
        bounds=list(zip(np.zeros(len(cols)), upper, strict=True)),
        method="highs-ds",
        options={"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10},
        **budget,
    )
    assert res.status == 0, res.message
    return -res.fun


@st.composite
def instances(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, float, float]:
    n = draw(st.integers(1, 7))
    m = draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**32 - 1))
    p = draw(st.sampled_from(P_VALUES))
    rng = np.random.default_rng(seed)
    t = rng.random((n, m))
    g = rng.standard_normal((n, m))
    kind = draw(st.sampled_from(["plain", "dup_t", "negative", "zero_gain", "padding", "zero_t", "concave"]))
    if kind == "dup_t":
        t[:, rng.integers(m)] = t[:, 0]
        g[:, rng.integers(m)] = g[:, 0]
    elif kind == "negative":
        g = -np.abs(g)
    elif kind == "zero_gain":
        g[:] = 0.0
    elif kind == "padding":
        t[rng.random((n, m)) < 0.4] = np.inf
    elif kind == "zero_t":
        t[:, 0] = 0.0
    elif kind == "concave":
        t = np.sort(t, axis=1)
        g = np.sqrt(t) * rng.random((n, 1))
    budget = draw(st.sampled_from(["zero", "small", "mid", "huge"]))
    eps = {"zero": 0.0, "small": 0.05, "mid": float(rng.random()), "huge": 10.0}[budget]
    return t, g, eps, p


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_lower_bound_equals_lp(case: tuple[np.ndarray, np.ndarray, float, float]) -> None:
    t, g, eps, p = case
    result = lower_bound(AttainedPoints(t, g), ThreatModel("l2", eps, p))
    expected = lp_optimum(t, g, eps, p)
    assert result.value == pytest.approx(expected, rel=1e-9, abs=1e-9)
    alloc = result.allocation
    limit = eps if math.isinf(p) else eps**p
    assert result.spent <= limit * (1 + 1e-12) + 1e-300
    assert np.count_nonzero(alloc.alpha) <= 1  # at most one sample split
    assert ((alloc.alpha >= 0) & (alloc.alpha < 1)).all()


def test_known_small_case() -> None:
    # two samples, p = 1: slopes 4 (sample 0, cost 0.5) and 1 (sample 1, cost 1); budget N eps = 1
    pts = AttainedPoints(np.array([[0.5], [1.0]]), np.array([[2.0], [1.0]]))
    res = lower_bound(pts, ThreatModel("linf", 0.5, 1), clean=np.array([0.1, 0.3]))
    assert res.value == pytest.approx((2.0 + 0.5 * 1.0) / 2)
    assert res.risk == pytest.approx(0.2 + 1.25)
    np.testing.assert_array_equal(res.allocation.low, [1, 0])
    np.testing.assert_array_equal(res.allocation.high, [1, 1])
    np.testing.assert_allclose(res.allocation.alpha, [0.0, 0.5])


def test_zero_distance_gain_is_free() -> None:
    pts = AttainedPoints(np.array([[0.0, 1.0]]), np.array([[0.3, 5.0]]))
    assert lower_bound(pts, ThreatModel("l2", 0.0, 2)).value == pytest.approx(0.3)


def test_pointwise_takes_best_point_inside_ball() -> None:
    pts = AttainedPoints(np.array([[0.1, 0.2, 0.3]]), np.array([[1.0, 3.0, 9.0]]))
    res = lower_bound(pts, ThreatModel("linf", 0.2, "inf"))
    assert res.value == 3.0
    assert res.allocation.low[0] == 2


@pytest.mark.parametrize("p", P_VALUES)
@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_distribution_is_feasible_and_reproduces_value(p: float, norm: str, tmp_path) -> None:
    rng = np.random.default_rng(7)
    n, m, d = 40, 5, 6
    x = torch.rand(n, d, dtype=torch.float64)
    y = torch.randint(0, 3, (n,))
    candidates = (x[:, None] + 0.3 * torch.randn(n, m, d, dtype=torch.float64)).clamp(0, 1)
    threat = ThreatModel(norm, {"linf": 0.08, "l2": 0.2, "l1": 0.4}[norm], p)
    w = torch.as_tensor(rng.standard_normal(d))

    def loss(z: torch.Tensor, lab: torch.Tensor) -> torch.Tensor:  # a known loss on points
        return torch.sin(3 * z @ w) + 0.1 * lab.double()

    t = threat.norm_of(candidates.reshape(n * m, d) - x.repeat_interleave(m, 0)).reshape(n, m)
    gains = loss(candidates.reshape(n * m, d), y.repeat_interleave(m)).reshape(n, m) - loss(x, y)[:, None]
    clean = loss(x, y).numpy()
    res = lower_bound(
        AttainedPoints(t.numpy(), gains.numpy()), threat, clean, x=x, y=y, candidates=candidates, device="cpu"
    )
    dist = res.distribution
    assert dist is not None and dist.audit(threat)
    assert dist.x.shape[0] <= n + 1
    assert dist.expected(loss) == pytest.approx(res.risk, rel=1e-12, abs=1e-12)
    assert dist.wasserstein_bound() <= threat.eps * (1 + 1e-9)
    if threat.eps > 0 and res.value > 0 and not math.isinf(p):
        assert dist.cost() == pytest.approx(threat.eps**p, rel=1e-9)  # budget binding here
    path = tmp_path / "q.safetensors"
    dist.save(path)
    back = Distribution.load(path, device="cpu")
    assert back.threat == threat
    assert back.expected(loss) == pytest.approx(res.risk, rel=1e-12)
    assert [f.name for f in tmp_path.iterdir()] == ["q.safetensors"]


def test_audit_rejects_overspent_distribution() -> None:
    x = torch.zeros(2, 3)
    moved = torch.ones(2, 3)
    dist = Distribution(
        ThreatModel("linf", 0.5, 2),
        torch.cat([x, moved]),
        torch.zeros(4, dtype=torch.long),
        torch.tensor([0.25, 0.25, 0.25, 0.25], dtype=torch.float64),
        torch.tensor([0, 1, 0, 1]),
        x,
    )
    assert dist.cost() == pytest.approx(0.5)
    with pytest.raises(ValueError, match="exceeds the budget"):
        dist.audit()
    assert not dist.audit(raise_error=False)
    assert dist.audit(ThreatModel("linf", 0.75, 2))


def test_accuracy_weights_points() -> None:
    x = torch.tensor([[0.0], [1.0]])
    dist = Distribution(
        ThreatModel("l2", 1.0, 1),
        x,
        torch.tensor([0, 0]),
        torch.tensor([0.3, 0.7], dtype=torch.float64),
        torch.tensor([0, 1]),
        x,
    )
    model = torch.nn.Linear(1, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[-1.0], [1.0]]))
        model.bias.copy_(torch.tensor([0.5, 0.0]))
    assert dist.accuracy(model, device="cpu") == pytest.approx(0.3)


@pytest.mark.parametrize(
    ("t", "g", "message"),
    [
        ([[np.nan]], [[1.0]], "NaN"),
        ([[-0.1]], [[1.0]], ">= 0"),
        ([[0.1, 0.2]], [[1.0]], "shapes differ"),
        ([[0.1]], [[np.nan]], "NaN"),
    ],
)
def test_bad_points_raise(t, g, message) -> None:
    with pytest.raises(ValueError, match=message):
        AttainedPoints(np.array(t), np.array(g))


@pytest.mark.parametrize(("eps", "p", "message"), [(-0.1, 2, "eps"), (0.1, 0.5, "p"), ("x", 2, "eps")])
def test_bad_threat_raises(eps, p, message) -> None:
    with pytest.raises(ValueError, match=message):
        ThreatModel("l2", eps, p)


def test_bad_calls_raise() -> None:
    pts = AttainedPoints(np.array([[0.1]]), np.array([[1.0]]))
    with pytest.raises(ValueError, match="clean"):
        lower_bound(pts, ThreatModel("l2", 0.1, 2), clean=np.zeros(3))
    with pytest.raises(ValueError, match="together"):
        lower_bound(pts, ThreatModel("l2", 0.1, 2), x=torch.zeros(1, 2))
    with pytest.raises(ValueError, match="candidates"):
        lower_bound(
            pts,
            ThreatModel("l2", 0.1, 2),
            x=torch.zeros(1, 2),
            y=torch.zeros(1, dtype=torch.long),
            candidates=torch.zeros(1, 1, 3),
        )
    with pytest.raises(ValueError, match="AttainedPoints"):
        lower_bound((np.zeros(1), np.zeros(1)), ThreatModel("l2", 0.1, 2))


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0])
def test_many_chunks_match_lp(p: float, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows split over many hull chunks (chunk = 3) still give the LP optimum."""
    monkeypatch.setattr("wdrobust.primal.hull.CHUNK", 3)
    rng = np.random.default_rng(11)
    t, g = rng.random((40, 5)), rng.standard_normal((40, 5))
    threat = ThreatModel("l1", 0.3, p)
    assert lower_bound(AttainedPoints(t, g), threat).value == pytest.approx(
        lp_optimum(t, g, 0.3, p), rel=1e-9
    )


def test_large_instance_meets_its_dual_bound() -> None:
    """Weak duality: value <= lam eps^p + mean_i max_k (g_ik - lam t_ik^p) for every lam, with equality at
    the optimal lam; a 1-D minimisation over lam certifies optimality on N = 30,000 samples."""
    from scipy.optimize import minimize_scalar

    rng = np.random.default_rng(12)
    n, m, p, eps = 30_000, 8, 2.0, 0.2
    t = rng.random((n, m))
    g = np.sqrt(t) * rng.random((n, 1)) + 0.1 * rng.standard_normal((n, m))
    value = lower_bound(AttainedPoints(t, g), ThreatModel("l2", eps, p)).value
    pts = AttainedPoints(t, g)
    s = pts.t**p

    def dual(lam: float) -> float:
        return lam * eps**p + float((pts.g - lam * s).max(axis=1).mean())

    best = minimize_scalar(dual, bounds=(0.0, 50.0), method="bounded", options={"xatol": 1e-12})
    assert value <= best.fun + 1e-12
    assert value == pytest.approx(best.fun, rel=1e-7)
