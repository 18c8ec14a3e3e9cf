"""The milp certificate equals the brute-force local Lipschitz constant on small 2-D ReLU nets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _certify_brute import grid, pair_gradient_norms, tiny_mlp
from torch import nn

from wdrobust.certify import CERTIFICATES
from wdrobust.certify.milp import MILPCertificate, ReluNet, lipschitz_on_box
from wdrobust.threat import DUAL


def _box_grid(lo: np.ndarray, hi: np.ndarray, n: int = 301) -> torch.Tensor:
    return grid(n) * torch.tensor(hi - lo, dtype=torch.float32) + torch.tensor(lo, dtype=torch.float32)


def _brute(model: nn.Module, lo: np.ndarray, hi: np.ndarray, y: int, dual: str) -> np.ndarray:
    """max over a dense grid of the box of ||grad m_j||_dual, shape (K,): every activation cell that
    meets the box is hit by the grid on these nets, so this is the exact constant up to the grid."""
    return pair_gradient_norms(model, _box_grid(lo, hi), dual)[y].amax(dim=0).double().numpy()


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("norm", ["linf", "l1"])
def test_milp_equals_brute_force_on_2d_nets(seed: int, norm: str) -> None:
    model = tiny_mlp(seed, widths=(8, 8))
    net = ReluNet.from_model(model, (2,))
    x0 = np.array([0.35, 0.6]) + 0.1 * seed
    lo, hi = np.clip(x0 - 0.25, 0, 1), np.clip(x0 + 0.25, 0, 1)
    for y in range(3):
        values, optimal = lipschitz_on_box(net, x0, 0.25, y, norm, time_limit=30)
        brute = _brute(model, lo, hi, y, DUAL[norm])
        assert optimal
        assert values[y] == 0
        np.testing.assert_allclose(values, brute, rtol=1e-4, atol=1e-6)


def test_milp_l2_is_a_sound_bound() -> None:
    model = tiny_mlp(4, widths=(8, 8))
    lo, hi = np.array([0.1, 0.2]), np.array([0.6, 0.7])
    values, _ = lipschitz_on_box(ReluNet.from_model(model, (2,)), (lo + hi) / 2, 0.25, 1, "l2", time_limit=30)
    brute = _brute(model, lo, hi, 1, "l2")
    assert (values >= brute - 1e-6).all()
    assert (values <= 2**0.25 * _brute(model, lo, hi, 1, "l1") + 1e-6).all()  # sqrt(||g||_1 ||g||_inf) in 2-D


def test_time_limited_programs_still_bound_the_truth() -> None:
    model = tiny_mlp(5, widths=(24, 24))
    lo, hi = np.zeros(2), np.ones(2)
    values, _ = lipschitz_on_box(
        ReluNet.from_model(model, (2,)), lo + 0.5, 0.5, 0, "linf", time_limit=0.01
    )
    # whether 10 ms binds depends on the machine: the values bound the truth either way
    assert (values >= _brute(model, lo, hi, 0, "l1") - 1e-6).all()


def test_milp_certificate_shells_radius_and_labels() -> None:
    model = tiny_mlp(6, widths=(6, 6))
    x = torch.tensor([[0.3, 0.4], [0.7, 0.6], [0.5, 0.1]])
    y = model(x).argmax(dim=1)
    around = MILPCertificate.options_for("linf", 0.1, 2)  # shells from eps = 0.1 up, programs at 0.1
    cert = CERTIFICATES["milp"](model, "linf", losses=("ce", "margin", "zero_one"), device="cpu", **around)
    res = cert.run(x, y)
    assert res.sound and res.method == "milp" and res.note == ""
    maj = res.majorants["margin"]
    np.testing.assert_allclose(maj.knots[:, [0, -1]], np.tile([0.1, 1.0], (3, 1)), rtol=1e-6)
    for i in range(3):
        xi = x[i].double().numpy()
        brute = _brute(model, np.clip(xi - 0.1, 0, 1), np.clip(xi + 0.1, 0, 1), int(y[i]), "l1")
        np.testing.assert_allclose(maj.slopes[i, 0], brute.max(), rtol=1e-4)
    pts = grid(201)
    flips = model(pts).argmax(dim=1)[None] != y[:, None]
    dist = (pts[None] - x[:, None]).abs().amax(dim=2)
    nearest = torch.where(flips, dist, torch.inf).amin(dim=1).numpy()
    assert (res.certified_radius <= nearest + 1e-6).all()


def test_milp_rejects_smooth_activations() -> None:
    model = tiny_mlp(0, activation=nn.GELU)
    with pytest.raises(ValueError, match="GELU"):
        MILPCertificate(model, "linf", device="cpu").run(torch.rand(2, 2), torch.zeros(2).long())
    with pytest.raises(ValueError, match="time_limit"):
        MILPCertificate(model, "linf", time_limit=0)


def test_sampled_le_milp_le_local_le_global_on_a_digits_mlp(
    digits_test: tuple[torch.Tensor, torch.Tensor],
) -> None:
    from wdrobust.certify.global_lipschitz import GlobalLipschitz
    from wdrobust.certify.local import margin_lipschitz
    from wdrobust.nets.gradients import margin_gradients
    from wdrobust.train import fit

    recipe = {"lr": 1e-3, "schedule": "constant", "val_fraction": 0.0}  # the model this test was written on
    model = fit(
        "digits", "mlp", arch_kwargs={"widths": [16, 16]}, epochs=8, seed=0, device="cpu", **recipe
    ).model
    x, y = digits_test[0][:3], digits_test[1][:3]
    eps = 0.02
    local = margin_lipschitz(model, x, y, [eps], "linf", device="cpu")[:, :, 0].double().numpy()
    table = GlobalLipschitz(model, "linf", device="cpu").table((1, 8, 8), 10).numpy()
    net = ReluNet.from_model(model, (1, 8, 8))
    gen = torch.Generator().manual_seed(0)
    for i in range(3):
        xi = x[i].reshape(-1).double().numpy()
        lo, hi = np.clip(xi - eps, 0, 1), np.clip(xi + eps, 0, 1)
        exact, optimal = lipschitz_on_box(net, xi, eps, int(y[i]), "linf", time_limit=30)
        pts = torch.tensor(lo, dtype=torch.float32) + torch.rand(256, 64, generator=gen) * torch.tensor(
            hi - lo, dtype=torch.float32
        )
        _, g = margin_gradients(model, pts.reshape(-1, 1, 8, 8), y[i].expand(256))
        sampled = g.reshape(256, 10, -1).abs().sum(dim=2).amax(dim=0).double().numpy()
        assert optimal
        assert (sampled <= exact + 1e-4).all()
        assert (exact <= local[i] + 1e-4).all()
        assert (local[i] <= table[int(y[i])] + 1e-4).all()
