"""The global Lipschitz certificate is sound (>= brute-force gradient norms), exact for linear models, equal
to the chain formula on Sequential nets, and works on any traced graph (max pooling, residual joins)."""

from __future__ import annotations

import math

import pytest
import torch
from _certify_brute import grid, pair_gradient_norms, tiny_mlp
from torch import nn

from wdrobust.certify import CERTIFICATES, GlobalLipschitz
from wdrobust.losses import loss_fn
from wdrobust.nets.layers import Normalize
from wdrobust.threat import DUAL, ThreatModel, lp_norm

ACTS = [nn.ReLU, nn.GELU, nn.SiLU, nn.LeakyReLU, nn.ELU, nn.Tanh, nn.Sigmoid]
#: sup |sigma'| of each activation (ACTS order), written out independently of the activation table.
SUP_SLOPE = [1.0, 1.1290, 1.0999, 1.0, 1.0, 1.0, 0.25]


def _table(model: nn.Module, norm: str, shape: tuple[int, ...], k: int) -> torch.Tensor:
    return GlobalLipschitz(model, norm, device="cpu").table(shape, k)


def _chain_formula(model: nn.Sequential, slope: float, norm: str, k: int) -> torch.Tensor:
    """The weight-product bound of a Linear/activation chain written out with its matrices: v = |W_L^T c|,
    v <- s |W_l|^T v down the layers, L = ||v||_* (l2: also min with ||W_L^T c||_2 prod s ||W_l||_2)."""
    ws = [m.weight.detach().double() for m in model if isinstance(m, nn.Linear)]
    eye = torch.eye(k, dtype=torch.float64)
    c = (eye[None] - eye[:, None]).reshape(k * k, k)
    u = c @ ws[-1]
    v = u.abs()
    for w in reversed(ws[:-1]):
        v = slope * v @ w.abs()
    bound = lp_norm(v, DUAL[norm])
    if norm == "l2":
        factor = math.prod(slope * float(torch.linalg.matrix_norm(w, 2)) for w in ws[:-1])
        bound = torch.minimum(bound, lp_norm(u, "l2") * factor)
    return bound.reshape(k, k)


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_global_equals_the_chain_formula(act: type[nn.Module], norm: str) -> None:
    model = tiny_mlp(seed=ACTS.index(act), widths=(8, 6, 5), activation=act)
    expected = _chain_formula(model, SUP_SLOPE[ACTS.index(act)], norm, 3) * (1 + 1e-6)
    torch.testing.assert_close(_table(model, norm, (2,), 3), expected, rtol=1e-9, atol=0)


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_global_table_dominates_grid_gradients(act: type[nn.Module], norm: str) -> None:
    model = tiny_mlp(seed=ACTS.index(act), activation=act)
    brute = pair_gradient_norms(model, grid(121), DUAL[norm]).amax(dim=1).double()
    table = _table(model, norm, (2,), 3)
    assert (table >= brute - 1e-6).all()
    assert torch.equal(table.diagonal(), torch.zeros(3, dtype=table.dtype))
    assert (table.fill_diagonal_(1.0) > 0).all()


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_global_is_exact_for_a_linear_model(norm: str) -> None:
    torch.manual_seed(3)
    model = nn.Sequential(nn.Flatten(), nn.Linear(6, 4)).eval()
    w = model[1].weight.detach().double()
    exact = torch.stack(
        [
            torch.stack(
                [(w[j] - w[y]).norm(p={"l1": 1, "l2": 2, "linf": float("inf")}[DUAL[norm]]) for j in range(4)]
            )
            for y in range(4)
        ]
    )
    assert torch.allclose(_table(model, norm, (2, 3), 4), exact, rtol=1e-5)


def test_global_cnn_with_normalize_batchnorm_avgpool_dominates_samples() -> None:
    torch.manual_seed(1)
    bn = nn.BatchNorm2d(3)
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    bn.weight.data.uniform_(-2, 2)
    model = nn.Sequential(
        Normalize([0.4], [0.3]),
        nn.Conv2d(1, 3, 3, padding=1),
        bn,
        nn.GELU(),
        nn.AvgPool2d(2),
        nn.Conv2d(3, 2, 2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(2, 3),
    ).eval()
    x = torch.rand(3000, 1, 4, 4)
    for norm in ["linf", "l2", "l1"]:
        table = _table(model, norm, (1, 4, 4), 3)
        brute = pair_gradient_norms(_Flat(model), x.reshape(3000, 16), DUAL[norm]).amax(dim=1).double()
        assert (table >= brute - 1e-6).all()


class _Flat(nn.Module):
    """Wrap a (1,4,4)-input model so that the brute-force helper can feed flat points."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.reshape(-1, 1, 4, 4))


def test_large_conv_block_uses_a_sound_spectral_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """With materialisation disabled the l2 bound uses sqrt(||A||_1 ||A||_inf) and stays sound."""
    import wdrobust.certify.bounds.dense as dense

    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(32, 3)).eval()
    exact = _table(model, "l2", (1, 4, 4), 3)
    monkeypatch.setattr(dense, "MATERIALISE_LIMIT", 0)
    loose = _table(model, "l2", (1, 4, 4), 3)
    brute = pair_gradient_norms(_Flat(model), torch.rand(3000, 16), "l2").amax(dim=1).double()
    assert (loose >= exact - 1e-9).all()
    assert (exact >= brute - 1e-6).all()


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_global_majorant_and_radius_are_sound_on_a_grid(norm: str) -> None:
    model = tiny_mlp(seed=7, widths=(6,))
    pts = grid(101)
    x = torch.tensor([[0.3, 0.6], [0.5, 0.5], [0.8, 0.2], [0.1, 0.9]])
    y = model(x).argmax(dim=1)
    y[0] = (y[0] + 1) % 3  # one misclassified sample
    threat = ThreatModel(norm, 0.15, "inf")
    res = GlobalLipschitz(model, norm, losses=("ce", "margin", "zero_one"), device="cpu").run(x, y)
    assert res.sound and res.method == "global"
    dist = (pts[None] - x[:, None]).norm(p=float("inf") if norm == "linf" else 2, dim=2)  # (N, G)
    z = model(pts)
    for loss in ("ce", "margin"):
        val = torch.stack([loss_fn(loss, z, torch.full((len(pts),), int(c))) for c in y])  # (N, G)
        gain = torch.where(dist <= threat.eps, val - loss_fn(loss, model(x), y)[:, None], -torch.inf)
        assert (res.majorants[loss](threat.eps) >= gain.amax(dim=1).detach().numpy() - 1e-5).all()
    flips = z.argmax(dim=1)[None] != y[:, None]
    nearest = torch.where(flips, dist, torch.inf).amin(dim=1).numpy()
    assert res.certified_radius[0] == 0
    assert (res.certified_radius <= nearest + 1e-6).all()
    assert (res.certified_radius[1:] > 0).all()


class _Residual(nn.Module):
    """x -> head(relu(x + f(x)) with f = conv relu conv, a residual block on 1x6x6 inputs."""

    def __init__(self, act: type[nn.Module]) -> None:
        super().__init__()
        torch.manual_seed(4)
        self.stem = nn.Conv2d(1, 2, 3, padding=1)
        self.f = nn.Sequential(nn.Conv2d(2, 2, 3, padding=1), act(), nn.Conv2d(2, 2, 3, padding=1))
        self.act = act()
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(72, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        return self.head(self.act(h + self.f(h)))


def _maxpool_cnn() -> nn.Sequential:
    torch.manual_seed(3)
    return nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(2, 3, 3, padding=1),
        nn.MaxPool2d(3, stride=1, padding=1),  # overlapping windows
        nn.Flatten(),
        nn.Linear(27, 3),
    ).eval()


class _Shaped(nn.Module):
    """Feed flat points (n, 36) to a 1x6x6-input model (the brute-force helper samples flat points)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.reshape(-1, 1, 6, 6))


@pytest.mark.parametrize("name", ["maxpool", "residual_relu", "residual_gelu"])
@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_global_on_graphs_dominates_gradients_and_difference_quotients(name: str, norm: str) -> None:
    """A CNN with max pooling (overlapping windows too) and residual nets, which global bounds on the traced
    graph: the table is >= every sampled gradient dual norm and every observed difference quotient."""
    model = {
        "maxpool": _maxpool_cnn,
        "residual_relu": lambda: _Residual(nn.ReLU).eval(),
        "residual_gelu": lambda: _Residual(nn.GELU).eval(),
    }[name]()
    table = _table(model, norm, (1, 6, 6), 3)
    res = GlobalLipschitz(model, norm, device="cpu").run(
        torch.rand(2, 1, 6, 6), torch.zeros(2, dtype=torch.long)
    )
    assert res.sound and res.note == ""  # the graph's own bound, not the whole-box fallback
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2000, 36, generator=gen)
    brute = pair_gradient_norms(_Shaped(model), x, DUAL[norm]).amax(dim=1).double()
    assert (table >= brute - 1e-6).all()
    assert (table.fill_diagonal_(1.0) > 0).all()
    step = torch.randn(2000, 36, generator=gen) * 0.05
    with torch.no_grad():
        dz = (_Shaped(model)(x + step) - _Shaped(model)(x)).double()
    quotient = (dz[:, None, :] - dz[:, :, None]).abs() / lp_norm(step, norm).double()[:, None, None]
    assert (table.fill_diagonal_(0.0)[None] >= quotient - 1e-6).all()


def test_registry_and_the_transformer_fallback() -> None:
    """A graph whose nonlinearities have no global facts (softmax) gets the whole-box interval Jacobian."""
    assert CERTIFICATES["global"] is GlobalLipschitz

    class Attention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(5)
            self.lin = nn.Linear(4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.lin(x) * 0.5 + torch.softmax(self.lin(x), dim=1)

    model = Attention().eval()
    res = GlobalLipschitz(model, "l2", device="cpu").run(torch.rand(3, 4), torch.zeros(3, dtype=torch.long))
    assert res.sound and "whole-box interval Jacobian" in res.note
    table = _table(model, "l2", (4,), 3)
    brute = pair_gradient_norms(model, torch.rand(3000, 4), "l2").amax(dim=1).double()
    assert (table >= brute - 1e-6).all()


@pytest.mark.parametrize("p", [1.0, 2.0])
def test_global_upper_bound_dominates_the_grid_worst_case(p: float) -> None:
    """Every grid point is a candidate move: the exact optimum over them (primal.lower_bound) is a lower
    estimate of R_p(eps) on a fine grid, and the certificate's upper bound must stay above it."""
    from wdrobust.primal import AttainedPoints, lower_bound

    model = tiny_mlp(seed=8, widths=(6,))
    pts = grid(61)
    x = torch.tensor([[0.3, 0.6], [0.5, 0.5], [0.8, 0.2], [0.1, 0.9]])
    y = torch.tensor([0, 1, 2, 1])
    threat = ThreatModel("l2", 0.2, p)
    res = GlobalLipschitz(model, threat.norm, losses=("ce",), device="cpu").run(x, y)
    z = model(pts)
    val = torch.stack([loss_fn("ce", z, torch.full((len(pts),), int(c))) for c in y])
    gain = (val - loss_fn("ce", model(x), y)[:, None]).detach().double().numpy()
    dist = (pts[None] - x[:, None]).norm(dim=2).double().numpy()
    truth = lower_bound(AttainedPoints(dist, gain), threat, clean=res.clean_loss["ce"])
    assert truth.value > 0
    assert res.upper_bound("ce", threat).risk >= truth.risk - 1e-9
