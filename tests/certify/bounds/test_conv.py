"""The receptive-field pass of convolutional chains (``bounds.patches``) and ``auto``'s choice of passes.

- ``Window.read`` equals the column of F.unfold at each start position (zero outside the map);
- the receptive-field pass gives the dense pass's pre-activation bounds (to 1e-10) on a CNN with both
  convolution kernels (window matrix and conv_transpose2d), a convolution feeding a convolution, strides,
  padding, a smooth activation (non-zero lower offsets) and rows of different radii, for every norm;
- the pre-activation boxes contain the values at sampled points of the regions;
- ``auto`` costs a neuron by its windows: on a CNN it runs CROWN where full CROWN does (same bounds, no
  fallback), and with a small AUTO_COST it keeps interval boxes, names those values in ``Crown.fallback``
  and the crown certificate's note.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from wdrobust.certify import CERTIFICATES
from wdrobust.certify.bounds import BoundGraph, patches, propagation
from wdrobust.certify.bounds.patches import Window
from wdrobust.certify.bounds.propagation import Crown
from wdrobust.certify.bounds.region import Region


def _cnn() -> nn.Sequential:
    torch.manual_seed(3)
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 5, 4, stride=2, padding=1),
        nn.Conv2d(5, 4, 3, padding=1),  # a convolution feeding a convolution: the outside is masked
        nn.GELU(),
        nn.Conv2d(4, 4, 3, padding=0),
        nn.LeakyReLU(0.1),
        nn.Flatten(),
        nn.Linear(4 * 6 * 6, 3),
    )


def _boxes(graph: BoundGraph, region: Region, mode: str) -> dict:
    return {n.name: (b.lo.clone(), b.hi.clone()) for n, b in Crown(graph, region, mode).bounds.boxes.items()}


@pytest.mark.parametrize("k,s,p", [(3, 1, 1), (4, 2, 1), (6, 4, 5), (1, 1, 0)])
def test_window_read_is_the_unfold_column(k: int, s: int, p: int) -> None:
    g = torch.Generator().manual_seed(0)
    t = torch.randn(2, 3, 11, 9, generator=g, dtype=torch.float64)
    cols = F.unfold(F.pad(t, (p,) * 4), k, stride=s)  # (R, C k k, L)
    width = (9 + 2 * p - k) // s + 1
    where = torch.randperm(cols.shape[2], generator=g)[:5]
    got = Window(k, s, p, width).read(t, where)
    want = cols[:, :, where].transpose(1, 2).reshape(2, 5, 3, k, k)
    torch.testing.assert_close(got, want, rtol=0, atol=0)


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_receptive_field_bounds_equal_the_dense_pass(norm: str, monkeypatch) -> None:
    graph = BoundGraph(_cnn().double().eval().requires_grad_(False))
    x = torch.rand(3, 2, 16, 16, dtype=torch.float64)
    r = torch.tensor([0.01, 0.04, 0.1], dtype=torch.float64) * {"linf": 1, "l2": 4, "l1": 20}[norm]
    region = Region.ball(x, r, norm)
    kernels = []
    window_matrix, conv_t = patches._window_matrix, F.conv_transpose2d
    monkeypatch.setattr(patches, "_window_matrix", lambda *a: kernels.append("matrix") or window_matrix(*a))
    monkeypatch.setattr(
        patches.F, "conv_transpose2d", lambda *a, **k: kernels.append("conv") or conv_t(*a, **k)
    )
    fast = _boxes(graph, region, "crown")
    assert {"matrix", "conv"} <= set(kernels)  # both kernels ran (the matrix once per window size)
    monkeypatch.undo()
    monkeypatch.setattr(Crown, "_chain", lambda self, node: None)
    dense = _boxes(graph, region, "crown")
    assert fast.keys() == dense.keys()
    for name in fast:
        for a, b in zip(fast[name], dense[name], strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


def test_receptive_field_boxes_contain_sampled_values() -> None:
    net = _cnn().double().eval().requires_grad_(False)
    graph = BoundGraph(net)
    x = torch.rand(2, 2, 16, 16, dtype=torch.float64)
    r = torch.tensor([0.02, 0.05], dtype=torch.float64)
    boxes = _boxes(graph, Region.ball(x, r, "linf"), "crown")
    pts = x[:, None] + r[:, None, None, None, None] * (
        2 * torch.rand(2, 300, 2, 16, 16, dtype=torch.float64) - 1
    )
    pts = torch.cat([pts, x[:, None] + r[:, None, None, None, None] * torch.sign(torch.randn_like(pts))], 1)
    pts = pts.clamp(0, 1)
    value = pts.flatten(0, 1)
    for i, layer in enumerate(net):
        value = layer(value)
        lo, hi = boxes[f"_{i}"]
        v = value.reshape(2, -1, *lo.shape[1:])
        assert (v >= lo[:, None] - 1e-9).all() and (v <= hi[:, None] + 1e-9).all(), f"layer {i}"


def test_auto_runs_crown_on_conv_layers_and_reports_fallbacks(monkeypatch) -> None:
    graph = BoundGraph(_cnn().double().eval().requires_grad_(False))
    x = torch.rand(2, 2, 16, 16, dtype=torch.float64)
    region = Region.ball(x, torch.tensor([0.02, 0.05], dtype=torch.float64), "linf")
    full = Crown(graph, region, "crown")
    auto = Crown(graph, region, "auto")
    assert auto.fallback == []  # the windows make every conv layer affordable
    for node, box in full.bounds.boxes.items():
        torch.testing.assert_close(auto.bounds.boxes[node].lo, box.lo, rtol=0, atol=0)
    # a budget below the first conv layer's cost: intervals kept for those values, named in order
    chain, sizes = auto._plan(next(n for n in graph.nodes if n.name == "_3"))
    assert chain is not None and sum(sizes) < sum(auto._plan(graph.output)[1])
    monkeypatch.setattr(propagation, "AUTO_COST", sum(sizes))
    cheap = Crown(graph, region, "auto")
    interval = Crown(graph, region, "ibp")
    assert cheap.fallback[:1] == ["_3"]
    torch.testing.assert_close(
        cheap.bounds.boxes[cheap.pre(cheap.acts[1])].lo,
        interval.bounds.boxes[interval.pre(interval.acts[1])].lo,
        rtol=0,
        atol=0,
    )
    cert = CERTIFICATES["crown"](_cnn().eval(), "linf", radii=[0.02], bisection=0, lipschitz=False)
    result = cert.run(x.float(), torch.tensor([0, 1]))
    assert "auto kept interval bounds of balls: _3" in result.note
