"""Whole-box search of WDA (p < inf): shared per-class points, counted passes, never weaker."""

from __future__ import annotations

import math

import numpy as np
import torch
from _attack_setup import FAST, data, tiny

from wdrobust.attacks import ATTACKS
from wdrobust.attacks.base import union
from wdrobust.attacks.contract import Counted as Counting
from wdrobust.pipeline.bounds import summarize, worst_distribution
from wdrobust.primal import lower_bound
from wdrobust.threat import ThreatModel, lp_norm

FAST_BOX = {**FAST["wda"], "whole_box": 6, "whole_box_steps": 6, "offer": 2}


def test_offered_points_are_shared_by_the_class_and_measured_per_sample() -> None:
    x, y = data(n=30)
    threat = ThreatModel("l2", 0.3, 1)
    result = ATTACKS["wda"](tiny(), threat, keep_points=True, **FAST_BOX).run(x, y)
    offered = result.points[:, -2:]  # the whole-box block comes last: 2 points per sample
    for c in y.unique():
        same = offered[y == c]
        assert torch.equal(same, same[:1].expand_as(same))  # one set of points per label
    exact = lp_norm((offered - x[:, None]).reshape(-1, x.shape[1]).double(), "l2").reshape(30, 2)
    t = result.t[:, -2:]
    assert np.all(t >= exact.numpy()) and np.all(t <= exact.numpy() * (1 + 2e-6))


def test_whole_box_only_adds_candidates_and_counts_its_passes() -> None:
    x, y = data(n=30)
    model = Counting(tiny())
    for p in (1.0, 2.0):
        threat = ThreatModel("linf", 0.05, p)
        plain = ATTACKS["wda"](model, threat, **{**FAST_BOX, "whole_box": 0}).run(x, y)
        model.forward_count = model.backward_count = 0
        boxed = ATTACKS["wda"](model, threat, **FAST_BOX).run(x, y)
        assert boxed.forward_passes == model.forward_count > plain.forward_passes
        assert boxed.backward_passes == model.backward_count > plain.backward_passes
        assert np.array_equal(boxed.t[:, : plain.t.shape[1]], plain.t)  # the same schedule, then more
        for loss in ("ce", "margin", "zero_one"):
            before = lower_bound(plain.attained(loss), threat, plain.clean_loss[loss]).risk
            after = lower_bound(boxed.attained(loss), threat, boxed.clean_loss[loss]).risk
            assert after >= before - 1e-12


def test_no_whole_box_at_p_inf() -> None:
    x, y = data(n=12)
    threat = ThreatModel("linf", 0.05, math.inf)
    a = ATTACKS["wda"](tiny(), threat, **FAST_BOX).run(x, y)
    b = ATTACKS["wda"](tiny(), threat, **{**FAST_BOX, "whole_box": 0}).run(x, y)
    assert np.array_equal(a.t, b.t) and a.forward_passes == b.forward_passes


def test_union_is_at_least_as_strong_as_each_attack() -> None:
    x, y = data(n=20)
    threat = ThreatModel("linf", 0.08, 2)
    runs = [ATTACKS[n](tiny(), threat, keep_points=True, **FAST[n]).run(x, y) for n in ("wda", "wda++")]
    best = union(runs)
    assert best.t.shape[1] == sum(r.t.shape[1] for r in runs)
    s = summarize(best)
    for r in runs:
        assert s.distributional_accuracy <= summarize(r).distributional_accuracy + 1e-12
        assert s.expected_ce >= summarize(r).expected_ce - 1e-12
    assert worst_distribution(best, "ce", x, y).audit()
