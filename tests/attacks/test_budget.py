"""The transport budget of an attack (attacks/budget.py): how far one sample may move, and the radius
schedule of the distributional attacks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from wdrobust.attacks import Budget
from wdrobust.threat import ThreatModel


def test_radius_cap_is_the_whole_budget_on_one_sample_within_the_box() -> None:
    # N eps^p is the whole budget; all of it on one sample moves it N^(1/p) eps, at most diam X
    assert Budget(ThreatModel("l2", 0.1, 2), 16).radius_cap(d=100) == pytest.approx(0.4)
    assert Budget(ThreatModel("l2", 0.1, 1), 16).radius_cap(d=100) == pytest.approx(1.6)
    assert Budget(ThreatModel("linf", 0.1, 1), 1000).radius_cap(d=100) == 1.0  # diam of [0,1]^d in linf
    assert Budget(ThreatModel("linf", 0.1, math.inf), 1000).radius_cap(d=100) == 0.1


def test_schedule_is_geometric_from_eps_to_the_cap() -> None:
    budget = Budget(ThreatModel("l2", 0.1, 2), 16)
    radii = budget.schedule(d=100, count=5)
    assert radii[0] == pytest.approx(0.1) and radii[-1] == pytest.approx(0.4)
    assert np.allclose(np.diff(np.log(radii)), math.log(4) / 4)
    assert Budget(ThreatModel("l2", 0.1, math.inf), 16).schedule(100, 5) == [0.1]
    assert Budget(ThreatModel("l2", 0.0, 2), 16).schedule(100, 5) == [0.0]
    assert Budget(ThreatModel("l2", 0.1, 2), 16).schedule(100, 1) == [0.1]
    assert Budget(ThreatModel("l2", 0.1, 2), 1).schedule(100, 5) == [0.1]  # one sample: eps is the cap


def test_population_must_be_a_positive_whole_number() -> None:
    for bad in (0, -3, 2.5):
        with pytest.raises(ValueError, match="population"):
            Budget(ThreatModel(), bad)
