"""upper_bound: sound against known growth functions, Hoelder for linear majorants, above lower bounds."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wdrobust.primal import AttainedPoints, CertifiedRadii, Majorant, lower_bound, upper_bound
from wdrobust.threat import ThreatModel

P_VALUES = (1.0, 1.5, 2.0, 4.0, math.inf)


def grid_points(phi: Majorant, steps: int = 400, eps: float | None = None) -> AttainedPoints:
    """(t, phi(t)) on a grid over [0, T_i] per sample (plus t = eps): mixtures of these are feasible."""
    far = phi.knots[:, -1:]
    t = np.linspace(0.0, 1.0, steps + 1)[None, 1:] * far
    t = np.concatenate([t, phi.knots] + ([np.full_like(far, eps)] if eps is not None else []), axis=1)
    t = np.minimum(t, far)
    g = np.stack([phi(t[:, k]) for k in range(t.shape[1])], axis=1)
    return AttainedPoints(t, g)


def random_growth(rng: np.random.Generator, n: int, m: int, capped: bool) -> Majorant:
    """A piecewise-linear growth function, concave or not (random slopes), optionally capped."""
    knots = np.cumsum(rng.random((n, m)) + 0.05, axis=1)
    knots *= (1.0 + rng.random((n, 1))) / knots[:, -1:]
    slopes = rng.random((n, m)) * rng.choice([0.0, 1.0, 5.0], size=(n, m))
    cap = rng.random(n) * 2 if capped else None
    return Majorant(knots, slopes, cap)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 2**32 - 1),
    p=st.sampled_from(P_VALUES),
    eps=st.sampled_from([0.0, 0.02, 0.1, 0.4, 2.0]),
    capped=st.booleans(),
    loose=st.booleans(),
)
def test_upper_bound_is_sound_and_tight(seed: int, p: float, eps: float, capped: bool, loose: bool) -> None:
    """phi is the true growth; the truth R - R(0) is bracketed by the grid LP (lower_bound on the grid,
    exact for the grid) and the dual; a looser majorant (phi scaled up) must stay above the truth."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 12))
    phi = random_growth(rng, n, int(rng.integers(1, 5)), capped)
    threat = ThreatModel("l2", eps, p)
    truth_lb = lower_bound(grid_points(phi, eps=eps), threat).value
    major = Majorant(phi.knots, phi.slopes * (1.5 if loose else 1.0), None if phi.cap is None else phi.cap)
    ub = upper_bound(major, threat)
    assert ub.value >= truth_lb - 1e-9 * (1 + abs(truth_lb))
    if not loose:  # the dual of the exact growth is the truth: the grid LP gets within its resolution
        slack = 0.006 * (float(np.max(phi.slopes)) * float(np.max(phi.knots)) + 1e-12)
        assert ub.value <= truth_lb + slack


@pytest.mark.parametrize("p", [1.5, 2.0, 3.0, 4.0])
def test_hoelder_for_linear_majorants(p: float) -> None:
    """Two equal-slope segments (so no closed-form shortcut): the dual search must find Hoelder."""
    rng = np.random.default_rng(int(p * 10))
    n = 200
    lip = rng.random(n) * 4
    knots = np.stack([np.full(n, 3.0), np.full(n, 6.0)], axis=1)
    threat = ThreatModel("l2", 0.05, p)
    ub = upper_bound(Majorant(knots, np.stack([lip, lip], axis=1)), threat, clean=0.25)
    q = threat.q
    hoelder = 0.05 * np.mean(lip**q) ** (1 / q)
    assert ub.method == "dual"
    assert ub.value == pytest.approx(hoelder, rel=1e-9)
    assert ub.risk == pytest.approx(0.25 + hoelder, rel=1e-9)
    single = upper_bound(Majorant(knots[:, :1], lip[:, None]), threat)
    assert single.value == pytest.approx(hoelder, rel=1e-9)


def test_linear_p1_and_pinf_closed_forms() -> None:
    lip = np.array([0.5, 2.0, 1.0, 3.5])
    major = Majorant(np.full((4, 1), 10.0), lip[:, None])
    assert upper_bound(major, ThreatModel("linf", 0.1, 1)).value == pytest.approx(0.1 * 3.5)
    assert upper_bound(major, ThreatModel("linf", 0.1, "inf")).value == pytest.approx(0.1 * lip.mean())


def test_diameter_truncation_is_below_hoelder() -> None:
    """With a small diameter every sample saturates: the bound is mean L_i T < Hoelder."""
    lip = np.array([1.0, 4.0])
    major = Majorant(np.full((2, 1), 0.1), lip[:, None])
    threat = ThreatModel("l2", 0.5, 2)
    ub = upper_bound(major, threat)
    assert ub.value == pytest.approx(np.mean(lip * 0.1))
    assert ub.value < 0.5 * np.sqrt(np.mean(lip**2))


@pytest.mark.parametrize("p", P_VALUES)
def test_upper_above_lower_when_majorant_dominates_points(p: float) -> None:
    rng = np.random.default_rng(3)
    n, m = 30, 6
    major = random_growth(rng, n, 3, capped=True)
    t = rng.random((n, m)) * major.knots[:, -1:]
    g = np.stack([major(t[:, k]) for k in range(m)], axis=1) * rng.random((n, m))
    for eps in (0.0, 0.05, 0.3, 1.5):
        threat = ThreatModel("l1", eps, p)
        assert upper_bound(major, threat).value >= lower_bound(AttainedPoints(t, g), threat).value - 1e-12


def test_zero_one_step_majorant_matches_the_certified_radii_knapsack() -> None:
    """phibar = 0 up to r_i, then the cap 1 (an infinite slope): the dual is the fractional knapsack that
    CertifiedRadii are bounded by."""
    r = np.array([0.2, 0.5, 0.1, 0.9, 0.3])  # 0.3 = eps: a flip at the boundary counts (p = inf)
    n = r.size
    major = Majorant(
        np.stack([r, np.full(n, 2.0)], axis=1), np.stack([np.zeros(n), np.full(n, np.inf)], 1), np.ones(n)
    )
    for p in (1.0, 2.0, math.inf):
        threat = ThreatModel("l2", 0.3, p)
        exact = lower_bound(AttainedPoints(r[:, None], np.ones((n, 1))), threat).value
        assert upper_bound(major, threat).value == pytest.approx(exact, rel=1e-7, abs=1e-12)
        radii = CertifiedRadii(r, np.ones(n, dtype=bool))
        assert upper_bound(radii, threat).value == exact


def test_uncapped_jump_is_unbounded_and_jump_at_zero() -> None:
    inf_slope = Majorant(np.array([[0.5, 1.0]]), np.array([[1.0, np.inf]]))
    assert upper_bound(inf_slope, ThreatModel("l2", 0.1, 2)).value == math.inf
    jump = Majorant(np.array([[1.0]]), np.array([[np.inf]]), cap=np.array([0.7]))
    assert upper_bound(jump, ThreatModel("l2", 0.0, 2)).value == pytest.approx(0.7)


def test_bad_majorants_raise() -> None:
    with pytest.raises(ValueError, match="slopes"):
        Majorant(np.array([[1.0]]), np.array([[-1.0]]))
    with pytest.raises(ValueError, match="increasing"):
        Majorant(np.array([[1.0, 0.5]]), np.array([[1.0, 1.0]]))
    with pytest.raises(ValueError, match="finite"):
        Majorant(np.array([[1.0, np.inf]]), np.array([[1.0, 1.0]]))
    with pytest.raises(ValueError, match="cap"):
        Majorant(np.array([[1.0]]), np.array([[1.0]]), cap=np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="Majorant"):
        upper_bound("nope", ThreatModel("l2", 0.1, 2))


def test_stack_widens_without_changing_phibar() -> None:
    rng = np.random.default_rng(3)
    narrow = Majorant([[0.5, 2.0], [1.0, 2.0]], rng.uniform(0, 2, (2, 2)), cap=[1.5, np.inf], sound=True)
    wide = Majorant(np.cumsum(rng.uniform(0.1, 0.5, (3, 4)), axis=1), rng.uniform(0, 2, (3, 4)), sound=False)
    stacked = Majorant.stack([narrow, wide])
    assert stacked.knots.shape == (5, 4) and not stacked.sound
    assert np.array_equal(stacked.knots[:, -1], np.concatenate([narrow.knots[:, -1], wide.knots[:, -1]]))
    for t in np.linspace(0.0, 2.5, 11):
        assert np.allclose(stacked(t), np.concatenate([narrow(t), wide(t)]), rtol=1e-12, atol=1e-12)
    threat = ThreatModel("l2", 0.3, 2)
    assert math.isclose(
        upper_bound(narrow.widen(5), threat).value, upper_bound(narrow, threat).value, rel_tol=1e-9
    )


def random_staircase(rng: np.random.Generator, n: int, m: int, capped: bool) -> Majorant:
    """A piecewise-linear growth with upward jumps (left-continuous), optionally capped."""
    base = random_growth(rng, n, m, capped)
    jumps = rng.random((n, m)) * (rng.random((n, m)) < 0.6)
    return Majorant(base.knots, base.slopes * (rng.random((n, m)) < 0.5), base.cap, jumps=jumps)


def jump_points(phi: Majorant, steps: int = 400) -> AttainedPoints:
    """(t, phi(t)) on a grid plus just after every knot and at 0+ (where the jumps are reached)."""
    far = phi.knots[:, -1:]
    t = np.concatenate(
        [np.linspace(0.0, 1.0, steps + 1)[None, 1:] * far, phi.knots, phi.knots * (1 + 1e-9), far * 1e-9],
        axis=1,
    )
    t = np.minimum(t, far)
    g = np.stack([phi(t[:, k]) for k in range(t.shape[1])], axis=1)
    return AttainedPoints(t, g)


@settings(max_examples=80, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 2**32 - 1),
    p=st.sampled_from(P_VALUES),
    eps=st.sampled_from([0.0, 0.02, 0.1, 0.4, 2.0]),
    capped=st.booleans(),
)
def test_upper_bound_with_jumps_matches_the_lp(seed: int, p: float, eps: float, capped: bool) -> None:
    """Staircase majorants: the dual is above the LP over dense points of phibar (which lie under its
    supremum) and within the grid's resolution of it (the LP over the right limits is the truth)."""
    rng = np.random.default_rng(seed)
    phi = random_staircase(rng, int(rng.integers(1, 10)), int(rng.integers(1, 5)), capped)
    threat = ThreatModel("l1", eps, p)
    lp = lower_bound(jump_points(phi), threat).value
    ub = upper_bound(phi, threat).value
    assert ub >= lp - 1e-9 * (1 + abs(lp))
    slack = 0.006 * (float(np.max(phi.slopes)) * float(np.max(phi.knots)) + 1e-12) + 1e-6
    if eps > 0:
        assert ub <= lp + slack + 1e-6 * abs(lp)
    else:
        assert ub == 0.0  # nothing moves at eps = 0, finite jumps count for t > 0 only


def test_staircase_at_p_inf_reads_the_ball_of_eps() -> None:
    """phibar = U_k on (r_k-1, r_k]: at t = r_k it is U_k (left-continuous), just after it U_k+1."""
    staircase = Majorant.from_pieces(
        np.array([[0.1, 0.2, 1.0]]), np.array([[1.0, 2.0, 5.0]]), np.array([[1.0, 2.0, 5.0]])
    )
    assert upper_bound(staircase, ThreatModel("linf", 0.2, math.inf)).value == pytest.approx(2.0)
    assert upper_bound(staircase, ThreatModel("linf", 0.2 + 1e-9, math.inf)).value == pytest.approx(5.0)
    assert staircase(np.array([0.0]))[0] == 0.0 and staircase(np.array([1e-12]))[0] == pytest.approx(1.0)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), capped=st.booleans())
def test_minimum_is_the_pointwise_minimum(seed: int, capped: bool) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 6))
    a = random_staircase(rng, n, int(rng.integers(1, 5)), capped)
    b = random_staircase(rng, n, int(rng.integers(1, 5)), not capped)
    both = a.minimum(b)
    t = np.concatenate([np.linspace(0, 1, 301)[None, :] * a.knots[:, -1:], a.knots, b.knots], axis=1)
    t = np.minimum(t, both.knots[:, -1:])
    for k in range(t.shape[1]):
        np.testing.assert_allclose(both(t[:, k]), np.minimum(a(t[:, k]), b(t[:, k])), rtol=1e-9, atol=1e-9)
    for p in (1.0, 2.0, math.inf):
        threat = ThreatModel("l2", 0.1, p)
        assert (
            upper_bound(both, threat).value
            <= min(upper_bound(a, threat).value, upper_bound(b, threat).value) + 1e-9
        )


def test_from_pieces_raises_decreasing_pieces() -> None:
    """Pieces that go down are raised by a running maximum (still a majorant), zero-width ones dropped."""
    m = Majorant.from_pieces(
        np.array([[0.2, 0.2, 0.5, 1.0]]), np.array([[0.3, 9.0, 0.1, 0.6]]), np.array([[0.4, 9.0, 0.5, 0.5]])
    )
    t = np.array([0.1, 0.2, 0.3, 0.5, 0.7, 1.0])
    values = np.array([m(np.array([v]))[0] for v in t])
    assert np.all(np.diff(values) >= 0)
    assert values[1] == pytest.approx(0.4) and values[2] >= 9.0 and values[-1] >= 9.0


def test_huge_p_lowers_the_order_soundly() -> None:
    """eps^p underflows for p = 400 at eps = 0.01: the bound uses the largest representable p' <= p, which
    is sound (R_p <= R_p') and lies between the p = inf and the p = 2 bounds."""
    rng = np.random.default_rng(5)
    major = random_growth(rng, 20, 3, capped=True)
    values = {p: upper_bound(major, ThreatModel("l2", 0.01, p)) for p in (2.0, 400.0, math.inf)}
    assert "p lowered" in values[400.0].method
    assert values[math.inf].value - 1e-12 <= values[400.0].value <= values[2.0].value + 1e-12
    points = AttainedPoints(major.knots, np.stack([major(major.knots[:, k]) for k in range(3)], axis=1))
    assert lower_bound(points, ThreatModel("l2", 0.01, 400.0)).value <= values[400.0].value


def _phibar_literal(m: Majorant, i: int, t: float, right: bool) -> float:
    """The class docstring's formula for one sample and one t, term by term (the right limit counts the
    jump of a segment starting exactly at t)."""
    total, lo = 0.0, 0.0
    for hi, a, jump in zip(m.knots[i], m.slopes[i], m.jumps[i], strict=True):
        if lo < t or (right and lo <= t):
            total += jump
        inside = min(t, hi) - lo
        if inside > 0:
            total += a * inside
        lo = hi
    return min(float(m.cap[i]), total)


@settings(max_examples=80, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), capped=st.booleans(), right=st.booleans())
def test_at_many_points_matches_the_formula(seed: int, capped: bool, right: bool) -> None:
    """``Majorant.at`` (one merge sort per row) against the formula, at random points, exactly at the
    knots (ties) and beyond the last knot, with jumps and infinite slopes."""
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(1, 6)), int(rng.integers(1, 6))
    phi = random_staircase(rng, n, m, capped)
    slopes = np.where(rng.random((n, m)) < 0.15, np.inf, phi.slopes)
    phi = Majorant(phi.knots, slopes, phi.cap, jumps=phi.jumps)
    t = np.concatenate([rng.random((n, 7)) * 1.2 * phi.knots[:, -1:], phi.knots, np.zeros((n, 1))], axis=1)
    t = np.sort(t, axis=1) if rng.random() < 0.5 else t  # rows need not be sorted
    got = phi.at(t, right=right)
    want = np.array([[_phibar_literal(phi, i, t[i, k], right) for k in range(t.shape[1])] for i in range(n)])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(phi(t[:, 3], right=right), got[:, 3])


def test_minimum_with_diameters_a_few_ulps_apart():
    """Two certificates' last knots (the diameter) may differ by rounding; the merged last segment is then
    a few ulps wide and the rows with fewer segments must be padded elsewhere (regression: the padding
    split that segment into pieces that rounded onto each other)."""
    rng = np.random.default_rng(0)
    n = 40
    knots_a = np.cumsum(rng.random((n, 30)) + 0.05, axis=1)
    knots_a = knots_a / knots_a[:, -1:] * 8.0
    knots_a[:, -1] = 8.000000000000004
    knots_b = np.sort(rng.random((n, 3)), axis=1) * 7.0
    knots_b[:, -1] = 8.0
    a = Majorant(knots_a, rng.random((n, 30)) * 5, cap=rng.random(n) * 10 + 1)
    b = Majorant(knots_b, rng.random((n, 3)) * 5, cap=rng.random(n) * 10 + 1)
    both = a.minimum(b)
    t = np.minimum(np.linspace(0, 1, 201)[None, :] * 8.000000000000004, both.knots[:, -1:])
    np.testing.assert_allclose(both.at(t), np.minimum(a.at(t), b.at(t)), rtol=1e-9, atol=1e-9)
