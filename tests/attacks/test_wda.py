"""attacks/wda.py: the radius schedule's cost at p < inf, ``steps`` gradients at eps and ``warm_steps`` at
each warm-started radius, and p = inf unchanged (one radius, ``steps`` gradients); the target probe
retires the samples it breaks and leaves the others' scores unchanged."""

from __future__ import annotations

import math

import pytest
import torch
from _attack_setup import data, tiny
from torch import nn

from wdrobust.attacks.batch import Batch
from wdrobust.attacks.budget import Budget
from wdrobust.attacks.passes import Passes
from wdrobust.attacks.wda import WDA, rank_targets
from wdrobust.threat import ThreatModel

N, D = 8, 6


@pytest.mark.parametrize(("p", "steps", "radii"), [(2.0, 20, 12), (1.0, 7, 4), (math.inf, 20, 12)])
def test_passes_of_the_radius_schedule(p: float, steps: int, radii: int) -> None:
    """Two classes (k capped at 1: no probe) and no whole-box search: the passes are the ascent's alone."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(D, 16), nn.ReLU(), nn.Linear(16, 2)).eval()
    x = torch.rand(N, D, generator=torch.Generator().manual_seed(1))
    y = torch.zeros(N, dtype=torch.int64)
    attack = WDA(model, ThreatModel("linf", 0.1, p), steps=steps, radii=radii, whole_box=0)
    assert attack.warm_steps == math.ceil(steps / 4)
    result = attack.run(x, y)
    count = 1 if math.isinf(p) else radii
    gradients = steps + (count - 1) * attack.warm_steps
    assert result.backward_passes == N * gradients
    assert result.forward_passes == N * (1 + gradients + count)  # clean, gradients, last iterate per radius


def test_probe_retires_broken_samples_and_keeps_the_survivors_scores() -> None:
    """A sample leaves the probe once one of its iterates is misclassified (a flip within eps recorded);
    the samples that never break get the scores of a probe run on them alone (where none retires), and
    the probe costs fewer passes than k (2 probe_steps + 1) per sample (the count without retiring)."""
    x, y = data(n=20)
    model = tiny().eval()
    threat = ThreatModel("linf", 0.08)
    k, steps = 3, 3

    def probe(rows: torch.Tensor) -> tuple[torch.Tensor, Batch]:
        batch = Batch(
            model, threat, x[rows], y[rows], losses=("zero_one",), passes=Passes(),
            generator=torch.Generator(), budget=Budget(threat, rows.numel()),
        )  # fmt: skip
        targets = batch.top_targets(k)
        return rank_targets(batch, batch.all, targets, "probe", steps, "margin", 2.5), batch

    everyone = torch.arange(x.shape[0])
    scores, batch = probe(everyone)
    broken = batch.recorder.flip <= threat.eps
    assert 0 < int(broken.sum()) < x.shape[0] - 5  # some break (the clean-misclassified among them)
    assert batch.passes.backward < k * steps * x.shape[0]
    assert batch.passes.forward < x.shape[0] * (1 + k * (steps + 1))
    survivors = everyone[~broken]
    alone, batch_alone = probe(survivors)
    assert bool((batch_alone.recorder.flip > threat.eps).all())  # the reference run retires none
    torch.testing.assert_close(scores[survivors], alone, rtol=1e-6, atol=1e-6)
