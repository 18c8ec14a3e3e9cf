"""BaB domain bounds against dense grids: split CROWN with beta multipliers (engine.py) and the exact LP
of fully decided leaves (leaves.py), on 2-D ReLU nets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _certify_brute import region_points, tiny_net

from wdrobust.certify.bab import engine
from wdrobust.certify.bab.engine import bound_domains, root_bounds, split_nodes
from wdrobust.certify.bab.leaves import leaf_upper
from wdrobust.certify.bounds import BoundGraph
from wdrobust.certify.bounds.lipschitz import margin_cotangents
from wdrobust.certify.bounds.region import Region
from wdrobust.certify.relu_mip import ReluNet


def _setup(seed: int, norm: str, r: float = 0.3):
    net = tiny_net(seed, 2, "relu")
    graph = BoundGraph(net)
    x0 = torch.rand(2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    y = int(net(x0[None]).argmax())
    _, spec = margin_cotangents(torch.tensor([y]), 3)
    pts = region_points(x0, r, norm, 201)
    env = graph.evaluate(pts)
    return net, graph, x0, y, spec.to(torch.float64), pts, env


def _random_domains(seed: int, norm: str):
    """16 random domains (two or three random neurons split with random signs) of one 2-D net: the grid
    data (split node values, margins), the label, and bound_domains' arguments (graph, region, spec,
    nodes, lo, hi, rows)."""
    net, graph, x0, y, spec, pts, env = _setup(seed, norm)
    nodes = split_nodes(graph, x0[None])
    with torch.no_grad():
        z = [env[n].reshape(pts.shape[0], -1) for n in nodes]
        margins = net(pts) - net(pts)[:, y : y + 1]
    gen = torch.Generator().manual_seed(seed)
    d = 16
    lo = [torch.full((d, t.shape[1]), -torch.inf, dtype=torch.float64) for t in z]
    hi = [torch.full((d, t.shape[1]), torch.inf, dtype=torch.float64) for t in z]
    for b in range(d):
        for _ in range(2 + b % 2):
            i = int(torch.randint(len(nodes), (1,), generator=gen))
            k = int(torch.randint(z[i].shape[1], (1,), generator=gen))
            if torch.rand(1, generator=gen) < 0.5:
                lo[i][b, k] = 0.0
            else:
                hi[i][b, k] = 0.0
    region = Region.ball(x0.expand(d, 2), torch.full((d,), 0.3, dtype=torch.float64), norm)
    args = (graph, region, spec.expand(d, -1, -1))
    rows = torch.zeros(d, dtype=torch.long)
    return z, margins, y, (*args, nodes, lo, hi, rows)


def _split_bounds(seed: int, norm: str):
    """The random domains' grid data, boxes, and bounds without and with 20 beta steps."""
    z, margins, y, (*args, nodes, lo, hi, rows) = _random_domains(seed, norm)
    d = rows.shape[0]
    plain = bound_domains(*args, nodes, lo, hi, rows).upper
    beta = bound_domains(*args, nodes, lo, hi, rows, beta_steps=20).upper
    nan = [torch.full((d, 2, t.shape[1]), torch.nan, dtype=torch.float32) for t in lo]
    joint = bound_domains(*args, nodes, lo, hi, rows, beta_steps=20, slopes=nan)
    # children start from the optimised slopes: a second round from them is sound too
    again = bound_domains(*args, nodes, lo, hi, rows, beta_steps=5, slopes=joint.slopes).upper
    keep = [j for j in range(3) if j != y]
    return z, margins[:, keep], lo, hi, plain, (beta, joint.upper, again)


@pytest.mark.parametrize("norm", ["linf", "l1"])
@pytest.mark.parametrize("seed", range(3))
def test_split_domains_with_beta_are_sound_and_no_looser(seed: int, norm: str) -> None:
    """beta alone, beta with the lower slopes (from the Crown's, then from the optimised ones): sound on
    every domain's grid points, never above plain split CROWN."""
    z, margins, lo, hi, plain, optimised = _split_bounds(seed, norm)
    for beta in optimised:
        assert (beta <= plain).all()
        for b in range(beta.shape[0]):
            inside = torch.ones(margins.shape[0], dtype=torch.bool)
            for t, low, up in zip(z, lo, hi, strict=True):
                inside &= ((t >= low[b]) & (t <= up[b])).all(dim=1)
            if inside.any():
                assert (beta[b] >= margins[inside].amax(dim=0) - 1e-9).all()


def test_beta_and_slopes_tighten_some_split_domain() -> None:
    gains, slopes = [], []
    for seed in range(3):
        *_, plain, (beta, joint, _) = _split_bounds(seed, "linf")
        finite = torch.isfinite(plain)
        gains.append(float((plain - beta)[finite].max()))
        slopes.append(float((beta - joint)[finite].max()))
    assert max(gains) > 1e-3
    assert max(slopes) > 1e-3  # the slopes add to beta somewhere


class _ProvedAfter:
    """A `proved` callable: no domain before its call number `call` (the start of that step), the domains
    of mask from then on."""

    def __init__(self, mask: torch.Tensor, call: int) -> None:
        self.mask, self.call, self.calls = mask, call, 0

    def __call__(self, upper: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.mask if self.calls >= self.call else torch.zeros_like(self.mask)


@pytest.mark.parametrize("seed", range(2))
def test_proved_domains_leave_the_steps_and_the_others_keep_theirs(seed: int) -> None:
    """Domains that `proved` marks before step t keep the bounds of t - 1 steps (the plain pass for t = 1);
    the others get the same bounds and slopes as without `proved` (one domain's steps never depend on
    another's, so restricting the Crown to the open ones changes nothing for them); all proved: no step."""
    *_, (*args, nodes, lo, hi, rows) = _random_domains(seed, "linf")
    d = rows.shape[0]
    nan = [torch.full((d, 2, t.shape[1]), torch.nan, dtype=torch.float32) for t in lo]
    mask = torch.arange(d) % 3 == 0
    free = bound_domains(*args, nodes, lo, hi, rows, beta_steps=6, slopes=nan)
    for call in (1, 3):
        fewer = bound_domains(*args, nodes, lo, hi, rows, beta_steps=call - 1, slopes=nan).upper
        got = bound_domains(
            *args, nodes, lo, hi, rows, beta_steps=6, slopes=nan, proved=_ProvedAfter(mask, call)
        )
        torch.testing.assert_close(got.upper[mask], fewer[mask], rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(got.upper[~mask], free.upper[~mask], rtol=1e-9, atol=1e-12)
        for a, b in zip(got.slopes, free.slopes, strict=True):
            torch.testing.assert_close(a[~mask], b[~mask], rtol=1e-9, atol=1e-12)
    assert (fewer[mask] > free.upper[mask] + 1e-6).any()  # the marked domains did stop early
    everything = torch.ones(d, dtype=torch.bool)
    none = bound_domains(*args, nodes, lo, hi, rows, beta_steps=6, slopes=nan, proved=lambda u: everything)
    torch.testing.assert_close(none.upper, bound_domains(*args, nodes, lo, hi, rows).upper)


@pytest.mark.parametrize("norm", ["linf", "l1"])
@pytest.mark.parametrize("seed", range(3))
def test_leaf_lp_is_exact_on_activation_regions(seed: int, norm: str) -> None:
    net, graph, x0, y, spec, pts, env = _setup(seed, norm)
    relu = ReluNet.from_model(net, (2,))
    with torch.no_grad():
        z = [env[n].reshape(pts.shape[0], -1) for n in split_nodes(graph, x0[None])]
        margins = (net(pts) - net(pts)[:, y : y + 1]).numpy()
    keep = [j for j in range(3) if j != y]
    pattern = torch.cat([t > 0 for t in z], dim=1)
    regions, counts = torch.unique(pattern, dim=0, return_counts=True)
    checked = 0
    for p in regions[counts > 100]:  # activation regions with enough grid points to compare
        same = (pattern == p).all(dim=1).numpy()
        parts = p.split([t.shape[1] for t in z])
        lo = [np.where(q.numpy(), 0.0, -np.inf) for q in parts]
        hi = [np.where(q.numpy(), np.inf, 0.0) for q in parts]
        region = Region.ball(x0[None], torch.tensor([0.3], dtype=torch.float64), norm)
        bound = leaf_upper(relu, region, lo, hi, spec[0].numpy())
        grid_max = margins[same][:, keep].max(axis=0)
        assert (bound >= grid_max - 1e-9).all()  # sound
        assert (bound <= grid_max + 0.05).all()  # and exact up to the grid's spacing
        checked += 1
    assert checked >= 1


def _kept_and_again(seed: int) -> int:
    """Children of a bounded root, split on an unstable neuron of each node in turn, bounded with the boxes
    up to the split node kept and with every node bounded again: the bounds agree; returns how many splits
    had a node after them (where the two differ in work)."""
    _, graph, x0, _, spec, *_ = _setup(seed, "linf")
    nodes = split_nodes(graph, x0[None])
    region = Region.ball(x0[None], torch.tensor([0.3], dtype=torch.float64), "linf")
    widths = [graph.evaluate(x0[None])[n].numel() for n in nodes]
    free = [torch.full((1, w), torch.inf, dtype=torch.float64) for w in widths]
    rows = torch.zeros(1, dtype=torch.long)
    root = bound_domains(graph, region, spec, nodes, [-t for t in free], free, rows)
    compared = 0
    for i, (lo, hi) in enumerate(zip(root.lo, root.hi, strict=True)):
        unstable = ((lo < 0) & (hi > 0))[0].nonzero().flatten()
        if unstable.numel() == 0:
            continue
        k = int(unstable[0])
        kids_lo = [torch.cat([t, t]) for t in root.lo]
        kids_hi = [torch.cat([t, t]) for t in root.hi]
        kids_lo[i][0, k], kids_hi[i][1, k] = 0.0, 0.0
        args = (graph, Region.ball(x0.expand(2, 2), torch.full((2,), 0.3, dtype=torch.float64), "linf"))
        args += (spec.expand(2, -1, -1), nodes, kids_lo, kids_hi, rows.expand(2))
        again = bound_domains(*args)
        kept = bound_domains(*args, torch.full((2,), i, dtype=torch.long))
        torch.testing.assert_close(kept.upper, again.upper, rtol=1e-9, atol=1e-12)
        for a, b in zip(kept.lo + kept.hi, again.lo + again.hi, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
        compared += i < len(nodes) - 1
    return compared


def test_final_boxes_of_the_parent_give_the_same_bounds() -> None:
    assert sum(_kept_and_again(seed) for seed in range(8)) >= 3


@pytest.mark.parametrize("seed", range(3))
def test_root_boxes_by_alpha_contain_the_grid_and_no_looser_than_crown(seed: int) -> None:
    """root_bounds: the pre-activation boxes and margin bounds of alpha-CROWN through every layer hold
    on every grid point of the ball; with no time (budget 0) they are plain CROWN's, never tighter."""
    net, graph, x0, y, spec, pts, env = _setup(seed, "linf")
    nodes = split_nodes(graph, x0[None])
    region = Region.ball(x0[None], torch.tensor([0.3], dtype=torch.float64), "linf")
    with torch.no_grad():
        margins = (net(pts) - net(pts)[:, y : y + 1])[:, [j for j in range(3) if j != y]]
    crown = root_bounds(graph, region, spec, nodes, "crown", 5, budget=0.0)
    alpha = root_bounds(graph, region, spec, nodes, "crown", 5)
    for upper, lo, hi in (crown, alpha):
        assert (upper[0] >= margins.amax(dim=0) - 1e-9).all()
        for n, low, up in zip(nodes, lo, hi, strict=True):
            z = env[n].reshape(pts.shape[0], -1)
            assert ((z >= low - 1e-9) & (z <= up + 1e-9)).all()
    assert (alpha[0] <= crown[0] + 1e-9).all()
    for a, b in zip(alpha[1] + crown[2], crown[1] + alpha[2], strict=True):
        assert (a >= b - 1e-9).all()  # alpha's lo >= crown's lo, crown's hi >= alpha's hi


@pytest.mark.parametrize("seed", range(4))
def test_children_keeping_every_parent_box_are_sound(seed: int) -> None:
    """Children of a bounded root split on random neurons with every box kept from the root (split =
    the last node: nothing bounded again, as ``BabOptions.rebound`` does between re-boundings), with and
    without beta: their bounds hold on every grid point of the child (the root's grid points that meet
    its sign constraints)."""
    net, graph, x0, y, spec, pts, env = _setup(seed, "linf")
    nodes = split_nodes(graph, x0[None])
    region = Region.ball(x0[None], torch.tensor([0.3], dtype=torch.float64), "linf")
    widths = [graph.evaluate(x0[None])[n].numel() for n in nodes]
    free = [torch.full((1, w), torch.inf, dtype=torch.float64) for w in widths]
    root = bound_domains(
        graph, region, spec, nodes, [-t for t in free], free, torch.zeros(1, dtype=torch.long)
    )
    with torch.no_grad():
        z = [env[n].reshape(pts.shape[0], -1) for n in nodes]
        margins = (net(pts) - net(pts)[:, y : y + 1])[:, [j for j in range(3) if j != y]]
    d = 8
    lo, hi = [t.repeat(d, 1) for t in root.lo], [t.repeat(d, 1) for t in root.hi]
    unstable = [
        (i, k)
        for i, (a, c) in enumerate(zip(root.lo, root.hi, strict=True))
        for k in range(widths[i])
        if a[0, k] < 0 < c[0, k]
    ]
    gen = torch.Generator().manual_seed(seed)
    for b in range(d):
        for j in torch.randperm(len(unstable), generator=gen)[: 1 + b % 3].tolist():
            i, k = unstable[j]
            if (b + j) % 2:
                lo[i][b, k] = 0.0
            else:
                hi[i][b, k] = 0.0
    args = (graph, Region.ball(x0.expand(d, 2), torch.full((d,), 0.3, dtype=torch.float64), "linf"))
    args += (spec.expand(d, -1, -1), nodes, lo, hi, torch.zeros(d, dtype=torch.long))
    kept = torch.full((d,), len(nodes) - 1, dtype=torch.long)
    checked = 0
    for steps in (0, 10):
        upper = bound_domains(*args, kept, beta_steps=steps).upper
        for b in range(d):
            inside = torch.ones(pts.shape[0], dtype=torch.bool)
            for t, low, up in zip(z, lo, hi, strict=True):
                inside &= ((t >= low[b]) & (t <= up[b])).all(dim=1)
            if inside.any():
                assert (upper[b] >= margins[inside].amax(dim=0) - 1e-9).all()
                checked += 1
    assert checked >= d


def test_root_alpha_steps_follow_their_predicted_cost(monkeypatch) -> None:
    """root_bounds takes alpha steps only when their predicted cost ((steps + 1) x step_entries x the
    seconds per entry) fits the budget: at a huge time per entry none (plain CROWN, as with budget 0), at
    a tiny one all of them (as with no budget); a run with steps measures the time per entry."""
    _, graph, x0, _, spec, *_ = _setup(3, "linf")
    nodes = split_nodes(graph, x0[None])
    region = Region.ball(x0[None], torch.tensor([0.3], dtype=torch.float64), "linf")
    plain = root_bounds(graph, region, spec, nodes, "crown", 5, budget=0.0)
    monkeypatch.setitem(engine._CLOCK, "entry", 1e3)
    slow = root_bounds(graph, region, spec, nodes, "crown", 5, budget=1.0)
    monkeypatch.setitem(engine._CLOCK, "entry", 1e-15)
    fast = root_bounds(graph, region, spec, nodes, "crown", 5, budget=100.0)
    assert engine._CLOCK["entry"] > 1e-15  # measured by the run with steps
    unlimited = root_bounds(graph, region, spec, nodes, "crown", 5)
    assert torch.equal(slow[0], plain[0])
    assert torch.equal(fast[0], unlimited[0])
    assert (fast[0] < plain[0] - 1e-6).any()
