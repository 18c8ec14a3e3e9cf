"""The empirical estimate: max margin-gradient dual norm over visited points, labelled sound=False."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _certify_brute import tiny_mlp

from wdrobust import nets
from wdrobust.certify import Empirical, GlobalLipschitz
from wdrobust.nets.gradients import margin_gradients


def _max_norm(model: torch.nn.Module, pts: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    _, g = margin_gradients(model, pts, y)
    return g.abs().sum(dim=2).amax(dim=1).numpy()  # linf threat: dual l1, max over classes


def test_visited_points_raise_the_estimate_and_nan_is_ignored() -> None:
    model = tiny_mlp(3)
    x, y = torch.rand(6, 2), torch.randint(0, 3, (6,))
    alone = Empirical(model, "linf", device="cpu").run(x, y)
    np.testing.assert_allclose(alone.lipschitz, _max_norm(model, x, y), rtol=1e-5)
    visited = torch.rand(6, 4, 2)
    visited[:, -1] = float("nan")
    more = Empirical(model, "linf", device="cpu", batch_size=4).run(x, y, visited=visited)
    expect = np.max(
        [_max_norm(model, p, y) for p in (x, visited[:, 0], visited[:, 1], visited[:, 2])], axis=0
    )
    np.testing.assert_allclose(more.lipschitz, expect, rtol=1e-5)
    assert more.sound is False and (more.lipschitz >= alone.lipschitz).all()
    glob = GlobalLipschitz(model, "linf", device="cpu").run(x, y)
    assert (more.lipschitz <= glob.lipschitz + 1e-6).all()
    with pytest.raises(ValueError, match="visited"):
        Empirical(model, "linf", device="cpu").run(x, y, visited=torch.rand(6, 2, 3))


def test_empirical_runs_on_a_vision_transformer() -> None:
    model = nets.build("vit_tiny", seed=0, input_shape=(1, 8, 8), dim=16, depth=1, heads=2).eval()
    x, y = torch.rand(3, 1, 8, 8), torch.tensor([0, 1, 2])
    res = Empirical(model, "l2", losses=("ce", "zero_one"), device="cpu").run(x, y)
    assert res.sound is False and (res.lipschitz > 0).all() and res.certified_radius.shape == (3,)
