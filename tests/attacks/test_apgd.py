"""attacks/apgd.py: broken samples leave the ascent only where no recorded result can change (zero_one alone
at p = inf), with the same robust accuracy at fewer passes; the best points of retired rows are their own."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from wdrobust.attacks.apgd import APGD, apgd_ascent
from wdrobust.attacks.batch import Batch
from wdrobust.attacks.budget import Budget
from wdrobust.attacks.objectives import loss_objective
from wdrobust.attacks.passes import Passes
from wdrobust.threat import ThreatModel, lp_norm

N, D, K, EPS = 48, 16, 4, 0.15


def setup() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A seeded random MLP (not trained) and inputs labelled by it, four of them wrongly."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(D, 32), nn.ReLU(), nn.Linear(32, K)).eval()
    x = torch.rand(N, D, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x).argmax(1)
    y[:4] = (y[:4] + 1) % K
    return model, x, y


def test_zero_one_at_p_inf_retires_broken_samples_with_the_same_robust_accuracy() -> None:
    model, x, y = setup()
    threat = ThreatModel("linf", EPS)
    full = APGD(model, threat, losses=("ce", "zero_one"), n_iter=30).run(x, y)
    short = APGD(model, threat, losses=("zero_one",), n_iter=30).run(x, y)
    assert 0 < full.robust_accuracy() < full.clean_correct.mean()  # some samples break, some do not
    assert np.array_equal(np.isfinite(full.flips()), np.isfinite(short.flips()))
    assert short.robust_accuracy() == full.robust_accuracy()
    assert full.backward_passes == 30 * N
    robust = round(full.robust_accuracy() * N)
    assert 30 * robust <= short.backward_passes < full.backward_passes  # the robust ones run every step


def test_ce_recorded_or_p_below_inf_runs_every_step() -> None:
    model, x, y = setup()
    for losses, p in ((("ce", "zero_one"), math.inf), (("zero_one",), 2.0)):
        result = APGD(model, ThreatModel("linf", EPS, p), losses=losses, n_iter=12).run(x, y)
        assert result.backward_passes == 12 * N and result.forward_passes == 14 * N


def test_retired_rows_return_their_best_evaluated_point() -> None:
    model, x, y = setup()
    threat = ThreatModel("linf", EPS)
    batch = Batch(model, threat, x, y, losses=("zero_one",), passes=Passes(),
                  generator=torch.Generator().manual_seed(2), budget=Budget(threat, N))  # fmt: skip
    objective = loss_objective("ce", y, K)
    start = batch.random_start(batch.all, EPS)
    best_x, best_v = apgd_ascent(batch, start, batch.all, objective, EPS, 20, retire_broken=True)
    assert best_x.shape == x.shape and best_v.shape == (N,)
    with torch.no_grad():
        assert torch.allclose(objective(model(best_x), batch.all), best_v, atol=1e-5)
    assert lp_norm(best_x.double() - x.double(), "linf").max() <= EPS
    assert batch.passes.backward < 20 * N
