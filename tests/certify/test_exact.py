"""The exact certificate equals dense-grid minimal flip distances and max margins on 2-D ReLU nets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _certify_brute import grid, pair_gradient_norms, tiny_mlp
from torch import nn

from wdrobust.certify import CERTIFICATES
from wdrobust.certify.exact import ExactCertificate, box_bounds, flip_distances, linear_bounds, max_margins
from wdrobust.certify.relu_mip import ReluNet
from wdrobust.primal import FlipDistances, lower_bound
from wdrobust.threat import DUAL, ThreatModel, lp_norm

N_GRID = 801
SPACING = 1 / (N_GRID - 1)
POINTS = grid(N_GRID)
X = torch.tensor([[0.3, 0.4], [0.7, 0.6], [0.5, 0.15], [0.2, 0.8], [0.85, 0.3]])


def _balanced_mlp(seed: int) -> nn.Sequential:
    """A random 2-8-8-3 ReLU net whose last bias is shifted by the grid medians of the logits, so that
    every class owns part of [0,1]^2 and decision boundaries cross the square."""
    model = tiny_mlp(seed, widths=(8, 8))
    with torch.no_grad():
        model[-1].bias -= model(POINTS).median(dim=0).values
    return model


def _distances(norm: str) -> torch.Tensor:
    """||grid point - x_i|| for every sample and grid point, shape (N, G)."""
    return lp_norm((POINTS[None] - X[:, None]).reshape(-1, 2), norm).reshape(len(X), -1)


def _grid_flips(model: nn.Module, y: torch.Tensor, norm: str) -> np.ndarray:
    """min over misclassified grid points of ||x - x_i||, shape (N,) (inf when none)."""
    with torch.no_grad():
        wrong = model(POINTS).argmax(dim=1)[None] != y[:, None]
    return torch.where(wrong, _distances(norm), torch.inf).amin(dim=1).double().numpy()


@pytest.fixture(params=[0, 1, 2, 4], ids=lambda s: f"seed{s}")
def labelled(request: pytest.FixtureRequest) -> tuple[nn.Module, torch.Tensor]:
    model = _balanced_mlp(request.param)
    with torch.no_grad():
        return model, model(X).argmax(dim=1)


@pytest.mark.parametrize("norm", ["linf", "l1"])
def test_flip_distances_equal_the_grid_minimum(labelled: tuple[nn.Module, torch.Tensor], norm: str) -> None:
    model, y = labelled
    truth = _grid_flips(model, y, norm)
    assert np.isfinite(truth).all()
    res = flip_distances(model, X, y, norm)
    tol = 2 * SPACING  # a flip region meets the grid within two spacings of its closest point
    assert res.proven.all()
    assert (res.lower <= truth + 1e-6).all()  # sound: the grid point is a flip
    assert (res.upper <= truth + 1e-5).all() and (res.upper >= truth - tol).all()
    np.testing.assert_allclose(res.lower, res.upper, rtol=2e-4, atol=1e-6)
    again = flip_distances(model, X, y, norm, upper=truth, bounds=box_bounds)  # the attack's radius
    np.testing.assert_allclose(again.lower, res.lower, rtol=2e-4, atol=1e-6)


def test_samples_without_flips_and_misclassified_samples() -> None:
    model = _balanced_mlp(0)
    with torch.no_grad():
        y = model(X).argmax(dim=1)
    y_wrong = (y + 1) % 3
    res = flip_distances(model, X[:2], y_wrong[:2], "linf")
    assert (res.lower == 0).all() and (res.upper == 0).all() and res.proven.all()
    with torch.no_grad():
        model[-1].bias += torch.tensor([100.0, 0.0, 0.0])  # class 0 everywhere
    res = flip_distances(model, X[:2], torch.zeros(2, dtype=torch.long), "l1")
    assert res.proven.all() and (res.lower == 2).all() and np.isinf(res.upper).all()


@pytest.mark.parametrize("norm", ["linf", "l1"])
def test_max_margins_equal_the_grid_maximum(labelled: tuple[nn.Module, torch.Tensor], norm: str) -> None:
    model, y = labelled
    radii = np.array([0.05, 0.2])
    res = max_margins(model, X[:3], y[:3], radii, norm)
    dist = _distances(norm)[:3]
    with torch.no_grad():
        z = model(POINTS)
    lip = pair_gradient_norms(model, POINTS, DUAL[norm]).amax().item()  # margin Lipschitz bound on X
    tol = 2 * lip * SPACING
    assert res.proven.all()
    for i in range(3):
        margin = (z - z[:, y[i] : y[i] + 1]).double()
        for m, r in enumerate(radii):
            brute = margin[dist[i] <= r].amax(dim=0).numpy()
            assert (res.upper[i, :, m] >= brute - 1e-6).all()
            np.testing.assert_allclose(res.upper[i, :, m], brute, atol=tol)
            np.testing.assert_allclose(res.lower[i, :, m], res.upper[i, :, m], rtol=1e-3, atol=1e-5)
            assert res.upper[i, y[i], m] == 0


def test_time_limited_runs_stay_sound() -> None:
    model = tiny_mlp(5, widths=(24, 24), d=10)
    x = torch.rand(2, 10, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = model(x).argmax(dim=1)
    full = flip_distances(model, x, y, "linf")
    quick = flip_distances(model, x, y, "linf", time_limit=1e-3)
    assert full.proven.all()
    assert (quick.lower <= full.lower + 1e-6).all()
    assert (quick.upper >= full.upper - 1e-6).all()
    # whether 1 ms binds depends on the machine; a bracket it proves anyway is the exact one
    done = quick.proven
    assert (abs(quick.lower[done] - full.lower[done]) <= 1e-6).all()


def test_certificate_radii_are_the_flip_lower_bounds() -> None:
    model = _balanced_mlp(1)
    with torch.no_grad():
        y = model(X).argmax(dim=1)
    threat = ThreatModel("linf", 0.05, p=2)
    cert = CERTIFICATES["exact"](model, "linf", losses=("ce", "zero_one"), device="cpu")
    res = cert.run(X, y)
    flips = flip_distances(model, X, y, "linf")
    np.testing.assert_allclose(res.certified_radius, flips.lower, rtol=1e-9)
    assert res.sound and res.method == "exact" and cert.flips is not None and cert.flips.proven.all()
    assert "5/5 flip distances proven" in res.note
    truth = lower_bound(FlipDistances(_grid_flips(model, y, "linf"), res.clean_correct), threat).risk
    assert res.upper_bound("zero_one", threat).risk >= truth - 1e-9
    local = CERTIFICATES["local"](model, "linf", losses=("ce",), device="cpu").run(X, y)
    np.testing.assert_allclose(res.majorants["ce"].slopes, local.majorants["ce"].slopes)
    upper = _grid_flips(model, y, "linf")  # numpy, like an attack's flip_distance
    np.testing.assert_allclose(cert.run(X, y, upper=upper).certified_radius, flips.lower, rtol=2e-4)


def test_exact_refuses_l2_and_smooth_activations() -> None:
    model = _balanced_mlp(0)
    with pytest.raises(ValueError, match="linf and l1"):
        ExactCertificate(model, "l2", device="cpu")
    with pytest.raises(ValueError, match="linf and l1"):
        flip_distances(model, X, torch.zeros(5, dtype=torch.long), "l2")
    with pytest.raises(ValueError, match="GELU"):
        flip_distances(tiny_mlp(0, activation=nn.GELU), X, torch.zeros(5, dtype=torch.long), "linf")
    with pytest.raises(ValueError, match="time_limit"):
        ExactCertificate(model, "linf", time_limit=0)
    with pytest.raises(ValueError, match="upper must have shape"):
        flip_distances(model, X, torch.zeros(5, dtype=torch.long), "linf", upper=np.ones(3))
    with pytest.raises(ValueError, match="samples"):
        max_margins(model, X, torch.zeros(4, dtype=torch.long), [0.1], "linf")


@pytest.mark.parametrize("norm", ["linf", "l1"])
def test_linear_bounds_contain_sampled_preactivations_and_beat_intervals(norm: str) -> None:
    model = tiny_mlp(3, widths=(16, 16, 16), d=6)
    net = ReluNet.from_model(model, (6,))
    gen = np.random.default_rng(1)
    x0, radius = gen.uniform(size=6), 0.3
    lo, hi = np.clip(x0 - radius, 0, 1), np.clip(x0 + radius, 0, 1)
    tight = linear_bounds(net, x0, radius, norm)
    loose = box_bounds(net, x0, radius, norm)
    pts = lo + gen.uniform(size=(4000, 6)) * (hi - lo)
    if norm == "l1":
        step = pts - x0
        pts = x0 + step * np.minimum(1, radius / np.abs(step).sum(axis=1, keepdims=True))
    a = pts
    for (t_lo, t_hi), (b_lo, b_hi), w, b in zip(tight, loose, net.weights, net.biases, strict=False):
        z = a @ w.T + b
        assert (z >= t_lo - 1e-9).all() and (z <= t_hi + 1e-9).all()
        assert (t_lo >= b_lo - 1e-12).all() and (t_hi <= b_hi + 1e-12).all()
        a = np.clip(z, 0, None)
    assert sum((t_hi - t_lo).sum() for t_lo, t_hi in tight) < sum((h - l_).sum() for l_, h in loose)


def test_per_class_bounds_are_used_row_by_row() -> None:
    model = _balanced_mlp(2)
    with torch.no_grad():
        y = model(X).argmax(dim=1)
    seen: list[int] = []

    def per_class(net, x, radius, norm):  # shared bounds repeated once per class
        seen.append(1)
        return [(np.tile(a, (3, 1)), np.tile(b, (3, 1))) for a, b in linear_bounds(net, x, radius, norm)]

    tiled = flip_distances(model, X, y, "l1", bounds=per_class)
    np.testing.assert_allclose(tiled.lower, flip_distances(model, X, y, "l1").lower, rtol=1e-6)
    assert seen
