"""The fast paths of the bound engine agree with the general rules they replace.

- ``scale_nonneg`` (midpoint-radius product for derivative intervals D >= 0) equals the four-product hull;
- the closed-form ReLU / LeakyReLU bounds equal the hull of the activation at the ends and its jump;
- the dense-matrix transposed convolution equals ``conv_transpose2d``, and cached weights follow in-place
  changes of the model.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from wdrobust.certify.bounds import BoundGraph, linear, margin_lipschitz
from wdrobust.certify.bounds.activations import bound_activation, hull_bounds, piecewise_linear
from wdrobust.certify.bounds.interval import Box, Cot, Slopes, scale, scale_hull, scale_nonneg
from wdrobust.nets.gradients import margin_gradients


def _slopes(g: torch.Generator, shape: tuple[int, ...], kind: str) -> Slopes:
    """Derivative intervals: 'relu' ({0}, {1}, [0, 1]), 'nonneg' ([a, b] with 0 <= a <= b), 'signed'."""
    if kind == "relu":
        lo = torch.randint(0, 2, shape, generator=g).double()
        hi = torch.maximum(lo, torch.randint(0, 2, shape, generator=g).double())
        return Slopes(lo, hi)
    a = torch.rand(shape, generator=g, dtype=torch.float64) * 2
    b = a + torch.rand(shape, generator=g, dtype=torch.float64) * (torch.rand(shape, generator=g) < 0.7)
    return Slopes(a, b) if kind == "nonneg" else Slopes(a - 1.5, b - 1.5)


@pytest.mark.parametrize("kind", ["relu", "nonneg", "signed"])
def test_midpoint_radius_product_equals_hull(kind: str) -> None:
    g = torch.Generator().manual_seed(0)
    shape = (6, 5, 7)
    d = _slopes(g, shape, kind)
    assert d.nonneg == (kind != "signed")
    c = torch.randn(6, 3, *shape[1:], generator=g, dtype=torch.float64)
    r = torch.rand(6, 3, *shape[1:], generator=g, dtype=torch.float64) * (
        torch.rand(6, 3, 5, 7, generator=g) < 0.8
    )
    fast, hull = scale(Cot(c, r), d), scale_hull(Cot(c, r), d)
    torch.testing.assert_close(fast.center, hull.center, rtol=0, atol=1e-12)
    torch.testing.assert_close(fast.radius, hull.radius, rtol=0, atol=1e-12)
    # a point cotangent: mid c +- rad |c| is the same hull
    point, hull0 = scale(Cot(c), d), scale_hull(Cot(c, torch.zeros_like(c)), d)
    torch.testing.assert_close(point.center, hull0.center, rtol=0, atol=1e-12)
    torch.testing.assert_close(point.radius, hull0.radius, rtol=0, atol=1e-12)
    # brute force: products of sampled D and v stay inside
    t = torch.rand(50, 1, 1, 1, 1, generator=g, dtype=torch.float64)
    s = torch.rand(50, 1, 1, 1, 1, generator=g, dtype=torch.float64)
    prods = (d.lo.unsqueeze(1) + t * (d.hi - d.lo).unsqueeze(1)) * (c - r + 2 * s * r)
    assert (prods >= fast.center - fast.radius - 1e-12).all() and (
        prods <= fast.center + fast.radius + 1e-12
    ).all()


def test_exact_nonneg_slopes_scale_both_ends() -> None:
    d = Slopes(torch.tensor([[0.0, 1.0, 0.3]]), torch.tensor([[0.0, 1.0, 0.3]]))
    assert d.exact and d.nonneg
    out = scale_nonneg(Cot(torch.tensor([[[2.0, -1.0, 1.0]]]), torch.tensor([[[1.0, 0.5, 2.0]]])), d)
    torch.testing.assert_close(out.center, torch.tensor([[[0.0, -1.0, 0.3]]]))
    torch.testing.assert_close(out.radius, torch.tensor([[[0.0, 0.5, 0.6]]]))


@pytest.mark.parametrize("slope", [0.0, 0.01, 0.3, 1.0])
def test_piecewise_linear_closed_form_equals_hull(slope: float) -> None:
    act = piecewise_linear(slope)
    assert act.closed_form is not None
    g = torch.Generator().manual_seed(1)
    lo = torch.randn(500, generator=g, dtype=torch.float64)
    hi = lo + torch.rand(500, generator=g, dtype=torch.float64) * (torch.rand(500, generator=g) < 0.8)
    lo[:20], hi[:20] = 0.0, torch.rand(20, generator=g, dtype=torch.float64)  # ends exactly at the jump
    lo[20:40], hi[20:40] = -torch.rand(20, generator=g, dtype=torch.float64), 0.0
    lo[40:45], hi[40:45] = 0.0, 0.0
    fast, hull = bound_activation(act, Box(lo, hi)), hull_bounds(act, Box(lo, hi))
    for a, b in zip(
        (fast[0].lo, fast[0].hi, fast[1], fast[2]), (hull[0].lo, hull[0].hi, hull[1], hull[2]), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert piecewise_linear(1.5).closed_form is None  # sigma' decreasing at 0: the general hull


@pytest.mark.parametrize("spec", [(1, 3, 1, 1, 1), (4, 4, 2, 1, 1), (6, 3, 2, 0, 2), (3, 3, 1, 2, 1)])
def test_dense_transposed_convolution_equals_conv_transpose(spec: tuple[int, ...], monkeypatch) -> None:
    cin, k, stride, pad, groups = spec
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(cin, 2 * groups, k, stride, pad, groups=groups), nn.ReLU(), nn.Flatten(), nn.LazyLinear(4)
    )
    x = torch.rand(5, cin, 9, 7)
    net(x)
    net = net.double().eval()
    y = torch.tensor([0, 1, 2, 3, 0])
    radii = [0.02, 0.2]
    results = {}
    for dense in (True, False):
        monkeypatch.setattr(linear, "DENSE_ENTRIES", 1 << 30 if dense else 0)
        graph = BoundGraph(net)
        results[dense] = margin_lipschitz(graph, x.double(), y, radii, "linf", device="cpu")
        conv_cache = graph._caches[next(n for n in graph.rule_of if n.target == "0")]
        assert any(key[0] == "dense" for key in conv_cache) == dense
    torch.testing.assert_close(results[True], results[False], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("through_data", [False, True])
def test_cached_weights_follow_in_place_changes(through_data: bool) -> None:
    """Bounds on a reused graph follow edits of the weights, also through ``.data`` (which leaves a
    tensor's storage and in-place version counter as they were)."""
    torch.manual_seed(0)
    net = (
        nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(48, 3))
        .double()
        .eval()
    )
    x, y = torch.rand(4, 1, 4, 4, dtype=torch.float64), torch.tensor([0, 1, 2, 0])
    graph = BoundGraph(net)
    before = margin_lipschitz(graph, x, y, [0.1], "linf", device="cpu")
    if through_data:
        net[0].weight.data.mul_(-2.0)
        net[3].weight.data.add_(0.5)
    else:
        with torch.no_grad():
            net[0].weight.mul_(-2.0)
            net[3].weight.add_(0.5)
    after = margin_lipschitz(graph, x, y, [0.1], "linf", device="cpu")
    fresh = margin_lipschitz(BoundGraph(net), x, y, [0.1], "linf", device="cpu")
    torch.testing.assert_close(after, fresh, rtol=0, atol=0)
    assert not torch.allclose(before, after)


class _Functional(nn.Module):
    """x -> relu(x W^T) -> linear, with W a bare parameter read through a transpose (a constant node)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(4, 6, dtype=torch.float64))
        self.head = nn.Linear(6, 3).double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(F.linear(x.flatten(1), self.w.t())))


def test_cached_row_norms_follow_a_weight_read_through_a_constant_node() -> None:
    torch.manual_seed(0)
    net = _Functional().eval()
    x, y = torch.rand(3, 1, 2, 2, dtype=torch.float64), torch.tensor([0, 1, 2])
    graph = BoundGraph(net)
    before = margin_lipschitz(graph, x, y, [0.3], "l2", device="cpu")
    net.w.data.mul_(-3.0)
    after = margin_lipschitz(graph, x, y, [0.3], "l2", device="cpu")
    torch.testing.assert_close(after, margin_lipschitz(BoundGraph(net), x, y, [0.3], "l2", device="cpu"))
    assert not torch.allclose(before, after)


def test_max_pool_with_one_winner_per_window_is_exact() -> None:
    """A tiny region keeps each window's winner: the bound is the gradient norm at the centre."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8, 3))
    net = net.double().eval()
    x, y = torch.rand(3, 1, 4, 4, dtype=torch.float64), torch.tensor([0, 1, 2])
    lip = margin_lipschitz(net, x, y, [1e-9], "linf", device="cpu")[:, :, 0]
    _, g = margin_gradients(net, x, y)
    torch.testing.assert_close(lip, g.abs().flatten(2).sum(dim=2), rtol=1e-6, atol=1e-9)
