"""flip_knapsack: the zero_one knapsack, its boundary rule, and the sandwich radii <= distances."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from wdrobust.primal import flip_knapsack
from wdrobust.threat import ThreatModel


def brute_force(d: np.ndarray, correct: np.ndarray, eps: float, p: float) -> float:
    """Largest flipped fraction over all whole subsets plus the best fractional extra item."""
    n = d.size
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


@pytest.mark.parametrize("seed", range(12))
def test_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 6
    d = rng.random(n)
    d[rng.random(n) < 0.2] = np.inf
    correct = rng.random(n) < 0.8
    p = [1.0, 2.0, 3.0][seed % 3]
    eps = float(rng.random()) * 0.5
    res = flip_knapsack(d, correct, ThreatModel("l2", eps, p))
    assert res.flipped_fraction == pytest.approx(brute_force(d, correct, eps, p), abs=1e-12)
    assert res.accuracy == pytest.approx(correct.mean())
    assert (res.flipped[~correct] == 0).all()
    assert np.count_nonzero((res.flipped > 0) & (res.flipped < 1)) <= 1
    assert res.flipped.mean() == pytest.approx(res.flipped_fraction)


def test_known_values() -> None:
    d = np.array([0.1, 0.2, 0.4, 0.0])
    correct = np.array([True, True, True, False])
    res = flip_knapsack(d, correct, ThreatModel("linf", 0.1, 1))  # budget 0.4: flips 0.1, 0.2, 1/4 of 0.4
    np.testing.assert_allclose(res.flipped, [1, 1, 0.25, 0])
    assert res.robust_accuracy == pytest.approx(0.75 - 2.25 / 4)
    assert res.risk == pytest.approx(0.25 + 2.25 / 4)  # misclassified mass plus flipped mass
    pinf = flip_knapsack(d, correct, ThreatModel("linf", 0.2, math.inf))  # d <= eps flips (boundary counts)
    np.testing.assert_allclose(pinf.flipped, [1, 1, 0, 0])


@pytest.mark.parametrize("p", [1.0, 2.0, math.inf])
def test_radii_below_distances_give_lower_accuracy(p: float) -> None:
    rng = np.random.default_rng(5)
    d = rng.random(200)
    r = d * rng.random(200)  # certified radii never exceed the true flip distances
    correct = rng.random(200) < 0.9
    for eps in (0.0, 0.05, 0.2, 0.6):
        threat = ThreatModel("l2", eps, p)
        assert (
            flip_knapsack(r, correct, threat).robust_accuracy
            <= flip_knapsack(d, correct, threat).robust_accuracy + 1e-12
        )


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
        flip_knapsack(np.array(d), np.array(c), ThreatModel("l2", 0.1, 2))


def test_many_ties_take_the_quickselect_path() -> None:
    """40,000 samples with three distinct flip distances: the fill runs through the tie groups."""
    rng = np.random.default_rng(9)
    d = rng.choice([0.1, 0.2, 0.4], size=40_000)
    correct = np.ones(40_000, dtype=bool)
    threat = ThreatModel("l2", 0.15, 2)
    res = flip_knapsack(d, correct, threat)
    budget = 40_000 * 0.15**2
    counts = [(d == v).sum() for v in (0.1, 0.2, 0.4)]
    rest = budget - counts[0] * 0.1**2 - counts[1] * 0.2**2  # the two cheap groups flip whole
    assert 0 < rest < counts[2] * 0.4**2
    expected = (counts[0] + counts[1] + rest / 0.4**2) / 40_000
    assert res.flipped_fraction == pytest.approx(expected, rel=1e-12)
    assert np.count_nonzero((res.flipped > 0) & (res.flipped < 1)) <= 1
    assert (res.flipped[d < 0.3] == 1).all()
