"""zero_one growth types: the knapsack of FlipDistances (lower_bound) and CertifiedRadii (upper_bound)
against brute force, the boundary rule, the sandwich radii <= distances, closest_flips, and one definition
of flip distances shared by attack results and aggregation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from _attack_setup import FAST, data, tiny
from hypothesis import given, settings
from hypothesis import strategies as st

from wdrobust.attacks import ATTACKS
from wdrobust.attacks.base import AttackResult
from wdrobust.pipeline.bounds import summarize
from wdrobust.pipeline.records import AttackRecord, CertificateRecord
from wdrobust.primal import (
    CertifiedRadii,
    FlipDistances,
    UpperBounder,
    closest_flips,
    lower_bound,
    upper_bound,
)
from wdrobust.threat import ThreatModel


def brute_force(d: np.ndarray, correct: np.ndarray, eps: float, p: float) -> float:
    """Largest flipped fraction over all whole subsets plus the best fractional extra item (p < inf), or
    the fraction of correct samples with d_i <= eps (p = inf)."""
    n = d.size
    if math.isinf(p):
        return float(np.sum(correct & (d <= eps)) / n)
    cost = np.where(correct, d**p, np.inf)
    best = 0.0
    for mask in itertools.product([0, 1], repeat=n):
        chosen = np.array(mask, dtype=bool)
        spent = cost[chosen].sum()
        if spent > n * eps**p:
            continue
        rest = cost[~chosen]
        room = n * eps**p - spent
        extra = (
            min(1.0, room / rest.min()) if rest.size and np.isfinite(rest.min()) and rest.min() > 0 else 0.0
        )
        best = max(best, (chosen.sum() + extra) / n)
    return best


def flipped(d: np.ndarray, correct: np.ndarray, threat: ThreatModel) -> np.ndarray:
    """Per-sample flipped fractions: the allocation's gains of the FlipDistances bound."""
    return lower_bound(FlipDistances(d, correct), threat).allocation.gain


@pytest.mark.parametrize("seed", range(12))
def test_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 6
    d = rng.random(n)
    d[rng.random(n) < 0.2] = np.inf
    correct = rng.random(n) < 0.8
    p = [1.0, 2.0, 3.0][seed % 3]
    eps = float(rng.random()) * 0.5
    threat = ThreatModel("l2", eps, p)
    res = lower_bound(FlipDistances(d, correct), threat)
    assert res.value == pytest.approx(brute_force(d, correct, eps, p), abs=1e-12)
    assert res.clean == pytest.approx(1 - correct.mean()) and res.risk == pytest.approx(res.clean + res.value)
    f = res.allocation.gain
    assert (f[~correct] == 0).all()
    assert np.count_nonzero((f > 0) & (f < 1)) <= 1
    assert f.mean() == pytest.approx(res.value)
    assert res.budget_ok and res.budget <= eps * (1 + 1e-9) + 1e-12
    # a certified radius equal to the flip distance gives the same knapsack: the sandwich closes
    up = upper_bound(CertifiedRadii(d, correct), threat)
    assert up.value == res.value and up.risk == res.risk and up.sound and up.method == "knapsack"


@settings(max_examples=60, deadline=None)
@given(
    d=st.lists(st.floats(0.0, 1.0, allow_subnormal=False) | st.just(math.inf), min_size=1, max_size=6),
    wrong=st.lists(st.booleans(), min_size=6, max_size=6),
    eps=st.floats(0.0, 0.6),
    p=st.sampled_from([1.0, 1.5, 2.0, math.inf]),
)
def test_growth_types_equal_brute_force(d: list[float], wrong: list[bool], eps: float, p: float) -> None:
    dist = np.array(d)
    correct = ~np.array(wrong[: dist.size])
    threat = ThreatModel("l1", eps, p)
    truth = brute_force(dist, correct, eps, p)
    low = lower_bound(FlipDistances(dist, correct), threat)
    high = UpperBounder(CertifiedRadii(dist, correct, sound=False))(threat)
    assert low.value == pytest.approx(truth, abs=1e-12)
    assert high.value == pytest.approx(truth, abs=1e-12) and high.sound is False
    assert low.budget_ok


def test_known_values() -> None:
    d = np.array([0.1, 0.2, 0.4, 0.0])
    correct = np.array([True, True, True, False])
    threat = ThreatModel("linf", 0.1, 1)  # budget 0.4: flips 0.1, 0.2, 1/4 of 0.4
    res = lower_bound(FlipDistances(d, correct), threat)
    np.testing.assert_allclose(res.allocation.gain, [1, 1, 0.25, 0])
    assert 1 - res.risk == pytest.approx(0.75 - 2.25 / 4)  # distributional robust accuracy
    assert res.risk == pytest.approx(0.25 + 2.25 / 4)  # misclassified mass plus flipped mass
    assert res.budget == pytest.approx((0.1 + 0.2 + 0.25 * 0.4) / 4)
    assert res.budget_fraction == pytest.approx(1)
    pinf = ThreatModel("linf", 0.2, math.inf)  # d <= eps flips (boundary counts)
    np.testing.assert_allclose(flipped(d, correct, pinf), [1, 1, 0, 0])
    assert lower_bound(FlipDistances(d, correct), pinf).budget == 0.2
    assert upper_bound(CertifiedRadii(d, correct), pinf).value == pytest.approx(0.5)


@pytest.mark.parametrize("p", [1.0, 2.0, math.inf])
def test_radii_below_distances_give_a_higher_risk(p: float) -> None:
    rng = np.random.default_rng(5)
    d = rng.random(200)
    r = d * rng.random(200)  # certified radii never exceed the true flip distances
    correct = rng.random(200) < 0.9
    for eps in (0.0, 0.05, 0.2, 0.6):
        threat = ThreatModel("l2", eps, p)
        attacked = lower_bound(FlipDistances(d, correct), threat).risk
        assert upper_bound(CertifiedRadii(r, correct), threat).risk >= attacked - 1e-12


def test_minimum_of_certified_radii_is_the_step_at_the_larger_radius() -> None:
    correct = np.array([True, True, False])
    a = CertifiedRadii(np.array([0.1, 0.5, 0.0]), correct, name="a")
    b = CertifiedRadii(np.array([0.3, 0.2, 0.0]), correct, sound=False, name="b")
    both = a.minimum(b)
    np.testing.assert_array_equal(both.distances, [0.3, 0.5, 0.0])
    assert both.sound is False and both.name == "min(a, b)"
    threat = ThreatModel("l2", 0.2, 2)
    assert upper_bound(both, threat).value <= min(upper_bound(a, threat).value, upper_bound(b, threat).value)


@pytest.mark.parametrize(
    ("d", "c", "message"),
    [
        ([np.nan], [True], "NaN"),
        ([-1.0], [True], ">= 0"),
        ([1.0, 2.0], [True], "shape"),
        ([1.0], [1], "boolean"),
    ],
)
def test_bad_input_raises(d, c, message) -> None:
    with pytest.raises(ValueError, match=message):
        FlipDistances(np.array(d), np.array(c))
    with pytest.raises(ValueError, match=message):
        CertifiedRadii(np.array(d), np.array(c))


def test_roles_are_typed() -> None:
    """Radii are majorants (no lower bound), flip distances are attained (no upper bound, no distribution)."""
    d, correct = np.array([0.1, 0.2]), np.array([True, True])
    threat = ThreatModel("l2", 0.1, 2)
    with pytest.raises(ValueError, match="AttainedPoints or FlipDistances"):
        lower_bound(CertifiedRadii(d, correct), threat)
    with pytest.raises(ValueError, match="Majorant or CertifiedRadii"):
        upper_bound(FlipDistances(d, correct), threat)
    with pytest.raises(ValueError, match="attained points and their candidates"):
        lower_bound(FlipDistances(d, correct), threat, candidates=np.zeros((2, 1, 1)))


def test_many_ties_take_the_quickselect_path() -> None:
    """40,000 samples with three distinct flip distances: the fill runs through the tie groups."""
    rng = np.random.default_rng(9)
    d = rng.choice([0.1, 0.2, 0.4], size=40_000)
    correct = np.ones(40_000, dtype=bool)
    threat = ThreatModel("l2", 0.15, 2)
    res = lower_bound(FlipDistances(d, correct), threat)
    budget = 40_000 * 0.15**2
    counts = [(d == v).sum() for v in (0.1, 0.2, 0.4)]
    rest = budget - counts[0] * 0.1**2 - counts[1] * 0.2**2  # the two cheap groups flip whole
    assert 0 < rest < counts[2] * 0.4**2
    expected = (counts[0] + counts[1] + rest / 0.4**2) / 40_000
    assert res.value == pytest.approx(expected, rel=1e-12)
    f = res.allocation.gain
    assert np.count_nonzero((f > 0) & (f < 1)) <= 1
    assert (f[d < 0.3] == 1).all()


def test_closest_flips() -> None:
    t = np.array([[0.3, 0.1, np.inf], [0.2, 0.4, 0.5], [0.1, 0.2, 0.3]])
    gain = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0], [0.0, 0.0, 0.0]])  # zero_one gains
    correct = np.array([True, True, False])
    np.testing.assert_array_equal(closest_flips(t, gain, correct), [0.3, 0.4, 0.0])
    found = np.array([0.25, np.inf, 0.0])
    np.testing.assert_array_equal(closest_flips(t, gain, correct, found), [0.25, 0.4, 0.0])
    np.testing.assert_array_equal(closest_flips(t, None, correct, found), [0.25, np.inf, 0.0])
    np.testing.assert_array_equal(closest_flips(t, None, correct), [np.inf, np.inf, 0.0])


@pytest.mark.parametrize("name", ["pgd", "wda++"])
def test_attack_results_and_records_share_the_flip_distances(name: str) -> None:
    """AttackResult.flips, the record's zero_one growth (what aggregation uses) and the summary agree."""
    x, y = data(n=12)
    threat = ThreatModel("l2", 0.4, 2)
    result: AttackResult = ATTACKS[name](tiny(), threat, **FAST[name]).run(x, y)
    rec = AttackRecord.of(result)
    growth = rec.growth("zero_one", result.clean_correct)
    assert isinstance(growth, FlipDistances)
    np.testing.assert_array_equal(growth.distances, result.flips())
    without = AttackRecord.of(result)
    without.flip_distance = None  # from the zero_one candidates alone: the same closest flips
    if name == "pgd":  # pgd keeps every iterate as a candidate; wda++ bisects between kept points
        alone = without.growth("zero_one", result.clean_correct).distances
        np.testing.assert_array_equal(alone, result.flips())
    assert (np.isfinite(result.flips()) & result.clean_correct).sum() > 0
    zero_one = lower_bound(growth, threat, result.clean_loss["zero_one"])
    assert summarize(result).distributional_accuracy == pytest.approx(1 - zero_one.risk, abs=1e-15)


def test_certificate_records_give_radii_and_majorants() -> None:
    correct = np.array([True, False])
    rec = CertificateRecord("radius", True, {}, np.array([0.2, 0.0]), None, None, 0.0, 0, 0)
    radii = rec.growth("zero_one", correct)
    assert isinstance(radii, CertifiedRadii) and radii.sound and radii.name == "radius"
    assert rec.growth("ce", correct) is None
    back = CertificateRecord.of_growth("combined", "zero_one", radii, seconds=0.0, forward_passes=0,
                                       backward_passes=0)  # fmt: skip
    np.testing.assert_array_equal(back.certified_radius, [0.2, 0.0])
