"""alpha-CROWN (``bounds.alpha``): soundness against brute force and what each mode buys.

(a) the full mode's margin bounds are >= the maximum of the margins over dense points of B(x, r) cap [0,1]^d
    (2-D and 3-D nets, every activation of the grid helpers, three norms) and <= plain CROWN's;
(b) on a net whose intermediate bounds matter, full is strictly tighter than the output-only mode;
(c) a small conv net with max pooling: full stays above sampled values and below plain CROWN;
(d) the mechanics: chunks of rows give the rows' own results, early stop returns the first bound, the
    model's weights get no gradients, unknown modes are refused (library and certificate).
"""

from __future__ import annotations

import itertools

import pytest
import torch
from _certify_brute import ACTS, region_points, tiny_net
from torch import nn

from wdrobust.certify import CERTIFICATES
from wdrobust.certify.bounds import BoundGraph, alpha
from wdrobust.certify.bounds.lipschitz import margin_cotangents
from wdrobust.certify.bounds.propagation import Crown, margin_bounds
from wdrobust.certify.bounds.region import Region


def _rows(seed: int, d: int, n: int = 4) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x0 (n, d), margin cotangents (n, 2, 3), radii (n,)) for a 3-class net."""
    g = torch.Generator().manual_seed(100 + seed)
    x0 = torch.rand(n, d, generator=g, dtype=torch.float64)
    _, c = margin_cotangents(torch.randint(0, 3, (n,), generator=g), 3)
    return x0, c.double(), torch.tensor([0.03, 0.15, 0.4, 2.0], dtype=torch.float64)[:n]


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
@pytest.mark.parametrize("act", list(ACTS))
def test_full_alpha_dominates_grid_and_is_below_crown(act: str, norm: str) -> None:
    for seed in range(4):
        d = 2 if seed % 2 else 3
        net = tiny_net(seed, d, act).requires_grad_(False)
        graph = BoundGraph(net)
        x0, c, r = _rows(seed, d)
        region = Region.ball(x0, r, norm)
        plain, _, _ = margin_bounds(graph, region, c, intermediate="crown")
        full, _, _ = margin_bounds(graph, region, c, intermediate="crown", alpha_steps=8, alpha="full")
        assert (full <= plain + 1e-12).all()
        for i in range(4):
            pts = region_points(x0[i], float(r[i]), norm, 61 if d == 2 else 17)
            truth = (net(pts) @ c[i].T).amax(dim=0)
            assert (truth <= full[i] + 1e-9).all(), (seed, i, truth, full[i])


def _deep_net(seed: int = 1) -> nn.Module:
    """A 2-12-12-12-3 ReLU net (float64) with large weights (N(0, 2.5^2 / fan_in)), whose deeper
    pre-activation bounds are loose under plain CROWN."""
    g = torch.Generator().manual_seed(seed)
    widths, layers = [2, 12, 12, 12, 3], []
    for fan, out in itertools.pairwise(widths):
        lin = nn.Linear(fan, out)
        with torch.no_grad():
            lin.weight.copy_(torch.randn(out, fan, generator=g) * 2.5 / fan**0.5)
            lin.bias.copy_(torch.randn(out, generator=g) * 0.5)
        layers += [lin, nn.ReLU()]
    return nn.Sequential(*layers[:-1]).double().eval().requires_grad_(False)


def test_full_alpha_is_strictly_tighter_than_output_only_where_intermediate_slopes_matter() -> None:
    graph = BoundGraph(_deep_net())
    x0, c, _ = _rows(1, 2)
    region = Region.ball(x0, torch.full((4,), 0.5, dtype=torch.float64), "linf")
    output, _, _ = margin_bounds(graph, region, c, intermediate="crown", alpha_steps=20, alpha="output")
    full, _, _ = margin_bounds(graph, region, c, intermediate="crown", alpha_steps=20, alpha="full")
    assert (full < output).all()
    assert (output - full).mean() > 0.1 * output.abs().mean()


def test_full_alpha_on_a_conv_net_with_max_pooling_stays_sound() -> None:
    torch.manual_seed(3)
    net = nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(3, 4, 3), nn.ReLU(),
        nn.Flatten(), nn.Linear(4, 3),
    ).double().eval().requires_grad_(False)  # fmt: skip
    graph = BoundGraph(net)
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(2, 1, 6, 6, generator=g, dtype=torch.float64)
    _, c = margin_cotangents(torch.tensor([0, 2]), 3)
    r = torch.tensor([0.05, 0.2], dtype=torch.float64)
    region = Region.ball(x0, r, "linf")
    plain, _, _ = margin_bounds(graph, region, c.double(), intermediate="crown")
    full, _, _ = margin_bounds(graph, region, c.double(), intermediate="crown", alpha_steps=5, alpha="full")
    assert (full <= plain + 1e-12).all()
    for i in range(2):
        inside = 2 * torch.rand(4000, 1, 6, 6, generator=g, dtype=torch.float64) - 1
        corners = 2 * torch.randint(0, 2, (4000, 1, 6, 6), generator=g) - 1
        pts = (x0[i] + r[i] * torch.cat([inside, corners])).clamp(0, 1)
        values = net(pts) @ c[i].double().T
        assert (values.amax(dim=0) <= full[i] + 1e-9).all()


def test_chunks_of_rows_give_each_row_its_own_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    graph = BoundGraph(_deep_net())
    x0, c, r = _rows(1, 2)
    together = Crown(graph, Region.ball(x0, r, "l2"), "crown").optimise_upper(c, 6, "full")
    monkeypatch.setattr(alpha, "CHUNK_ENTRIES", 1)  # one row per chunk
    alone = Crown(graph, Region.ball(x0, r, "l2"), "crown").optimise_upper(c, 6, "full")
    assert torch.allclose(together, alone, rtol=1e-9, atol=1e-9)


def test_early_stop_returns_the_first_bound_once_every_row_is_below_it() -> None:
    graph = BoundGraph(_deep_net())
    x0, c, r = _rows(2, 2)
    crown = Crown(graph, Region.ball(x0, r, "linf"), "crown")
    with torch.no_grad():
        plain = crown.upper(graph.output, c)
    stopped = crown.optimise_upper(c, 20, "full", stop=float(plain.max()) + 1.0)
    assert torch.allclose(stopped, plain, rtol=1e-9, atol=1e-9)
    assert (crown.optimise_upper(c, 20, "full") < plain - 1e-6).any()  # without the stop it moves


def test_the_model_weights_get_no_gradient() -> None:
    net = _deep_net().requires_grad_(True)
    x0, c, r = _rows(3, 2)
    margin_bounds(BoundGraph(net), Region.ball(x0, r, "linf"), c, alpha_steps=3, alpha="full")
    assert all(p.grad is None for p in net.parameters())


def test_unknown_modes_are_refused() -> None:
    graph = BoundGraph(_deep_net())
    x0, c, r = _rows(4, 2)
    with pytest.raises(ValueError, match="alpha must be one of output, full"):
        margin_bounds(graph, Region.ball(x0, r, "linf"), c, alpha_steps=2, alpha="partial")
    with pytest.raises(ValueError, match="certificate 'crown': option alpha must be one of output, full"):
        CERTIFICATES["crown"](_deep_net(), "linf", alpha_steps=2, alpha="partial")


def test_full_alpha_writes_back_sound_tighter_boxes() -> None:
    """After a full-mode optimisation the Crown holds its tightened pre-activation boxes: inside the
    plain CROWN boxes, strictly tighter somewhere, and still containing the values at dense points."""
    net = _deep_net()
    graph = BoundGraph(net)
    x0, c, _ = _rows(1, 2)
    r = torch.full((4,), 0.5, dtype=torch.float64)
    crown = Crown(graph, Region.ball(x0, r, "linf"), "crown")
    before = {n: (b.lo.clone(), b.hi.clone()) for n, b in crown.bounds.boxes.items()}
    crown.optimise_upper(c, 10, "full")
    shrunk = 0.0
    for i in range(4):
        env = graph.evaluate(region_points(x0[i], float(r[i]), "linf", 61))
        for node, (lo, hi) in before.items():
            box = crown.bounds.boxes[node]
            assert (box.lo[i] >= lo[i] - 1e-12).all() and (box.hi[i] <= hi[i] + 1e-12).all()
            values = env[node]
            assert (values >= box.lo[i] - 1e-9).all() and (values <= box.hi[i] + 1e-9).all()
            shrunk += float((hi[i] - lo[i]).sum() - (box.hi[i] - box.lo[i]).sum())
    assert shrunk > 1e-3
