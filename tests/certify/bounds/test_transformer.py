"""Soundness of the transformer bound rules (matmul of two intervals, softmax, LayerNorm, head split and
merge, class token) against brute force.

(a) each rule on random boxes: its box contains the operation at sampled points (corners included), its
    interval Jacobian contains the vector-Jacobian products at sampled points and cotangents, and its
    linear relaxation satisfies lam . f(x) <= coef . x + bias at the sampled points;
(b) tiny ViTs (two tokens of dimension 2, one head, one block; random and trained weights): margin
    Lipschitz bounds dominate the gradient norms, interval and CROWN margin bounds dominate the margins on
    dense grids of B(x, r) cap [0,1]^2 for linf, l2 and l1.
"""

from __future__ import annotations

import math

import pytest
import torch
from _certify_brute import region_points
from _transformer_brute import Flat, tiny_vit
from torch import nn

from wdrobust.certify.bounds import BoundGraph, margin_lipschitz, margin_upper_rows
from wdrobust.certify.bounds.bilinear import MatMulRule
from wdrobust.certify.bounds.interval import Box, Cot
from wdrobust.certify.bounds.layernorm import LayerNormRule
from wdrobust.certify.bounds.lipschitz import margin_cotangents
from wdrobust.certify.bounds.propagation import INTERMEDIATE, margin_bounds
from wdrobust.certify.bounds.region import Region
from wdrobust.certify.bounds.softmax import SoftmaxRule
from wdrobust.nets.gradients import margin_gradients
from wdrobust.threat import dual_of, lp_norm

TOL = 1e-9


def random_box(shape: tuple[int, ...], g: torch.Generator, spread: float = 2.0) -> Box:
    """A box with centres N(0, spread^2) and half-widths in [0, spread] (some exactly 0)."""
    c = torch.randn(shape, generator=g, dtype=torch.float64) * spread
    r = torch.rand(shape, generator=g, dtype=torch.float64) * spread
    r = r * (torch.rand(shape, generator=g) > 0.1)
    return Box(c - r, c + r)


def samples(box: Box, k: int, g: torch.Generator) -> torch.Tensor:
    """k points of the box (k, *shape): random points, half of them pushed to random corners."""
    u = torch.rand((k, *box.lo.shape), generator=g, dtype=torch.float64)
    u[: k // 2] = (u[: k // 2] > 0.5).double()
    return box.lo + u * (box.hi - box.lo)


def layernorm(n: int, g: torch.Generator) -> nn.LayerNorm:
    ln = nn.LayerNorm(n).double()
    with torch.no_grad():
        ln.weight.copy_(torch.randn(n, generator=g, dtype=torch.float64))
        ln.bias.copy_(torch.randn(n, generator=g, dtype=torch.float64))
    return ln.requires_grad_(False)


CASES = {
    "layernorm": lambda g: (LayerNormRule, layernorm(4, g), [(3, 2, 4)]),
    "layernorm_wide": lambda g: (LayerNormRule, layernorm(7, g), [(2, 3, 7)]),
    "softmax": lambda g: (SoftmaxRule, nn.Softmax(dim=-1), [(3, 2, 4)]),
    "softmax_dim1": lambda g: (SoftmaxRule, nn.Softmax(dim=1), [(3, 4, 2)]),
    "matmul": lambda g: (MatMulRule, torch.matmul, [(3, 2, 3, 4), (3, 2, 4, 2)]),
}


def _setup(name: str, seed: int, spread: float):
    g = torch.Generator().manual_seed(seed)
    rule_cls, op, shapes = CASES[name](g)
    boxes = [random_box(s, g, spread) for s in shapes]
    rule = rule_cls(op, name)
    with torch.no_grad():
        out = rule.forward(*boxes)
    fn = (lambda a, b: op(a, b)) if len(boxes) == 2 else op
    pts = [samples(b, 300, g) for b in boxes]  # (k, N, ...) per argument
    flat = [p.reshape(-1, *p.shape[2:]) for p in pts]
    return g, rule, boxes, out, fn, pts, flat


@pytest.mark.parametrize("spread", [0.05, 1.0, 4.0])
@pytest.mark.parametrize("name", list(CASES))
def test_rule_box_and_jacobian_contain_samples(name: str, spread: float) -> None:
    for seed in range(4):
        g, rule, _, out, fn, pts, flat = _setup(name, seed, spread)
        k, n_rows = pts[0].shape[:2]
        values = fn(*flat).reshape(k, *out.lo.shape)
        assert (values >= out.lo - TOL).all() and (values <= out.hi + TOL).all()
        # interval Jacobian: a point cotangent and an interval one, 2 classes
        shape = (n_rows, 2, *out.lo.shape[1:])
        center = torch.randn(shape, generator=g, dtype=torch.float64)
        for radius in (None, torch.rand(shape, generator=g, dtype=torch.float64) * 0.5):
            with torch.no_grad():
                cots = rule.backward(Cot(center, radius))
            cot_pts = center + (0 if radius is None else (2 * torch.rand(shape, generator=g) - 1) * radius)
            xs = [f.clone().requires_grad_(True) for f in flat]
            y = fn(*xs).reshape(k, *out.lo.shape)
            for cls in range(2):
                grads = torch.autograd.grad(
                    y, xs, cot_pts[:, cls].expand(k, *out.lo.shape), retain_graph=True
                )
                for gr, cot, p in zip(grads, cots, pts, strict=True):
                    gr = gr.reshape(p.shape)
                    c, r = cot.center[:, cls], (0 if cot.radius is None else cot.radius[:, cls])
                    assert (gr >= c - r - 1e-8).all() and (gr <= c + r + 1e-8).all(), (name, seed, cls)


@pytest.mark.parametrize("spread", [0.05, 1.0, 4.0])
@pytest.mark.parametrize("name", list(CASES))
def test_rule_relaxation_holds_at_samples(name: str, spread: float) -> None:
    for seed in range(4):
        g, rule, boxes, out, fn, pts, flat = _setup(name, seed, spread)
        k, n_rows = pts[0].shape[:2]
        lam = torch.randn((n_rows, 3, *out.lo.shape[1:]), generator=g, dtype=torch.float64)
        with torch.no_grad():
            coefs, bias = rule.linear_backward(lam, rule.relax(boxes))
            values = fn(*flat).reshape(k, *out.lo.shape)
        lhs = (lam.unsqueeze(0) * values.unsqueeze(2)).flatten(3).sum(dim=3)  # (k, N, 3)
        rhs = bias.unsqueeze(0).clone()
        for coef, p in zip(coefs, pts, strict=True):
            rhs = rhs + (coef.unsqueeze(0) * p.unsqueeze(2)).flatten(3).sum(dim=3)
        assert (lhs <= rhs + 1e-8 * (1 + rhs.abs())).all(), (name, seed, float((lhs - rhs).max()))


def test_softmax_box_is_exact_and_relaxation_tight_on_small_boxes() -> None:
    g = torch.Generator().manual_seed(0)
    c = torch.randn(4, 5, generator=g, dtype=torch.float64)
    rule = SoftmaxRule(nn.Softmax(dim=-1), "s")
    box = rule.forward(Box(c - 1e-7, c + 1e-7))
    s = torch.softmax(c, dim=-1)
    assert (box.hi - box.lo).max() < 1e-6 and (box.lo <= s).all() and (s <= box.hi).all()
    lam = torch.randn(4, 2, 5, generator=g, dtype=torch.float64)
    (coef,), bias = rule.linear_backward(lam, rule.relax([Box(c - 1e-7, c + 1e-7)]))
    value = (lam * s.unsqueeze(1)).sum(dim=2)
    assert ((coef * c.unsqueeze(1)).sum(dim=2) + bias - value).abs().max() < 1e-5


def vit_cases() -> list[tuple[str, nn.Module]]:
    return [
        ("random", tiny_vit(0)),
        ("random_silu", tiny_vit(1, activation="silu", scale=0.7)),
        ("trained", tiny_vit(2, trained=True)),
    ]


def _check_region(net: nn.Module, x: torch.Tensor, y: torch.Tensor, norm: str, radii: list[float]) -> None:
    """Lipschitz, interval and CROWN margin bounds of the flat model against dense region grids."""
    graph = BoundGraph(net)
    lip = margin_lipschitz(graph, x, y, radii, norm, device="cpu")
    assert torch.isfinite(lip).all()
    k = lip.shape[1]
    _, c = margin_cotangents(y, k)
    for m, r in enumerate(radii):
        rr = torch.full((x.shape[0],), r, dtype=torch.float64)
        interval = margin_upper_rows(graph, x, rr, y, norm)
        crowns = [
            margin_bounds(graph, Region.ball(x, rr, norm), c.double(), intermediate=mode)[0]
            for mode in INTERMEDIATE
        ]
        for i in range(x.shape[0]):
            pts = region_points(x[i], r, norm, 41)
            yi = y[i].expand(pts.shape[0])
            z, grad = margin_gradients(net, pts, yi)
            gn = lp_norm(grad.reshape(-1, 2), dual_of(norm)).reshape(grad.shape[:2]).amax(dim=0)
            assert (gn <= lip[i, :, m] * (1 + 1e-9) + 1e-12).all(), (i, r, gn, lip[i, :, m])
            top = z.amax(dim=0)
            top[y[i]] = -math.inf
            assert (top <= interval[i] + 1e-9).all()
            others = torch.cat([top[: y[i]], top[y[i] + 1 :]])
            for upper in crowns:
                assert (others <= upper[i] + 1e-9).all(), (i, r, others, upper[i])


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_tiny_vit_bounds_dominate_grid(norm: str) -> None:
    g = torch.Generator().manual_seed(7)
    for _, vit in vit_cases():
        net = Flat(vit)
        x = torch.rand(3, 2, generator=g, dtype=torch.float64)
        x[0, 0] = 0.0
        y = torch.randint(0, 3, (3,), generator=g)
        _check_region(net, x, y, norm, [0.02, 0.1, 0.5])


def test_tiny_vit_crown_beats_intervals() -> None:
    net = Flat(tiny_vit(2, trained=True))
    x = torch.tensor([[0.3, 0.4], [0.7, 0.2]], dtype=torch.float64)
    y = net(x).argmax(dim=1)
    graph = BoundGraph(net)
    _, c = margin_cotangents(y, 3)
    r = torch.full((2,), 0.05, dtype=torch.float64)
    crown = margin_bounds(graph, Region.ball(x, r, "linf"), c.double(), intermediate="crown")[0]
    ibp = graph.margin_upper(graph.bounds(Region.ball(x, r, "linf")), c.double())
    assert (crown <= ibp + 1e-12).all() and (crown < ibp - 1e-3).any()


def test_global_on_a_transformer_is_a_whole_box_bound_or_a_named_refusal() -> None:
    from wdrobust.certify import CERTIFICATES

    vit = tiny_vit(2, trained=True).float()
    net = Flat(vit)
    cert = CERTIFICATES["global"](net, "linf", losses=("margin",), device="cpu")
    x = torch.rand(4, 2, generator=torch.Generator().manual_seed(0))
    res = cert.run(x, net(x).argmax(dim=1))
    assert res.sound and "whole-box interval Jacobian" in res.note
    assert "LayerNorm" in res.note and "no global derivative bound" in res.note
    pts = region_points(torch.full((2,), 0.5, dtype=torch.float64), 0.5, "linf", 61).float()
    lip = cert.table((2,), 3)
    for y in range(3):
        _, grad = margin_gradients(net, pts, torch.full((pts.shape[0],), y))
        brute = grad.abs().sum(dim=2).amax(dim=0).double()
        assert (brute <= lip[y] * (1 + 1e-6) + 1e-9).all()

    class Untraceable(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.exp(x)

    with pytest.raises(
        ValueError, match=r"global: .*the bound engine cannot bound it: unsupported operation exp"
    ):
        CERTIFICATES["global"](Untraceable(), "linf", device="cpu").run(x, torch.zeros(4).long())
