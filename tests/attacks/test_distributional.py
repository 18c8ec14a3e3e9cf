"""Attack candidates through the primal solver: audits, exact expectations, nested balls."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _attack_setup import FAST, data, tiny

from wdrobust.attacks import ATTACKS
from wdrobust.pipeline.bounds import summarize, worst_distribution
from wdrobust.primal import lower_bound
from wdrobust.threat import ThreatModel


@pytest.mark.parametrize("name", ["pgd", "apgd", "wda", "wda++", "a3", "a3-wda", "w-pgd"])
@pytest.mark.parametrize("norm", ["linf", "l2"])
@pytest.mark.parametrize("p", [1.0, 2.0, math.inf])
def test_every_distribution_passes_its_audit_and_is_evaluated_exactly(name: str, norm: str, p: float) -> None:
    x, y = data(n=16)
    model = tiny().eval()
    threat = ThreatModel(norm, 0.1 if norm == "linf" else 0.4, p)
    result = ATTACKS[name](model, threat, keep_points=True, **FAST[name]).run(x, y)
    summary = summarize(result)
    for loss in ("ce", "zero_one"):
        dist = worst_distribution(result, loss, x, y)
        assert dist.audit()
        assert dist.x.min() >= 0 and dist.x.max() <= 1
        bound = lower_bound(result.attained(loss), threat, result.clean_loss[loss])
        with torch.no_grad():
            exact = dist.expected(lambda xs, ys: F.cross_entropy(model(xs), ys, reduction="none"))
        if loss == "ce":
            assert exact == pytest.approx(bound.risk, rel=1e-4, abs=1e-5)
            assert exact == pytest.approx(summary.expected_ce, rel=1e-4, abs=1e-5)
        else:
            assert dist.accuracy(model, device="cpu") == pytest.approx(1 - bound.risk, abs=1e-9)
            assert 1 - bound.risk == pytest.approx(summary.distributional_accuracy, abs=1e-9)
    assert 0 <= summary.budget_spent <= 1 + 1e-9


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_wda_nested_balls_and_pointwise_equality(norm: str) -> None:
    x, y = data(n=40)
    model = tiny()
    eps = {"linf": 0.08, "l2": 0.3, "l1": 0.8}[norm]
    runs = {
        p: ATTACKS["wda"](model, ThreatModel(norm, eps, p), **FAST["wda"]).run(x, y) for p in (1, 2, math.inf)
    }
    point = summarize(runs[math.inf])
    assert point.distributional_accuracy == pytest.approx(point.robust_accuracy, abs=1e-12)
    for p in (1, 2):
        s = summarize(runs[p])
        # lower accuracy / higher loss = stronger: the p-ball contains the inf-ball
        assert s.distributional_accuracy <= point.distributional_accuracy + 1e-12
        assert s.expected_ce >= point.expected_ce - 1e-9
    assert summarize(runs[1]).distributional_accuracy < point.distributional_accuracy


def test_flip_distances_bound_equals_the_zero_one_lower_bound() -> None:
    x, y = data(n=30)
    result = ATTACKS["wda++"](tiny(), ThreatModel("l2", 0.2, 1), **FAST["wda++"]).run(x, y)
    for p in (1, 2, math.inf):
        threat = ThreatModel("l2", 0.2, p)
        bound = lower_bound(result.attained("zero_one"), threat, result.clean_loss["zero_one"])
        assert summarize(result, threat).distributional_accuracy == pytest.approx(1 - bound.risk, abs=1e-12)


def test_worst_distribution_needs_points() -> None:
    x, y = data(n=5)
    result = ATTACKS["pgd"](tiny(), ThreatModel("linf", 0.1), steps=1).run(x, y)
    with pytest.raises(ValueError, match="keep_points"):
        worst_distribution(result, "ce", x, y)
    assert np.isfinite(summarize(result).expected_ce)


def test_population_sets_the_radius_schedule_of_a_batch(digits_mlp, digits_test):
    """A batch attacked as part of a larger set reaches the larger radii of that set's schedule."""
    x, y = digits_test[0][:20], digits_test[1][:20]
    threat = ThreatModel("linf", 0.01, p=1)
    # the schedule alone (the whole-box search offers points at any distance, whatever the population)
    alone = ATTACKS["wda"](digits_mlp, threat, seed=0, whole_box=0).run(x, y)
    part = ATTACKS["wda"](digits_mlp, threat, seed=0, whole_box=0, population=450).run(x, y)
    finite = np.isfinite(alone.t)
    assert alone.t[finite].max() <= 20 * 0.01 + 1e-6
    assert part.t[np.isfinite(part.t)].max() > 20 * 0.01
    with pytest.raises(ValueError, match="population"):
        ATTACKS["wda"](digits_mlp, threat, population=10).run(x, y)
    with pytest.raises(ValueError, match="population"):
        ATTACKS["wda"](digits_mlp, threat, population=0)
