"""Branch and bound (certify/bab/search.py) against dense grids on 2-D and 3-D ReLU nets."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from _certify_brute import region_points, tiny_net

from wdrobust._progress import current_stage
from wdrobust.certify.bab import BabOptions, verify
from wdrobust.certify.bab import search as module
from wdrobust.certify.bab.attack import max_margin
from wdrobust.certify.bab.domains import Domains
from wdrobust.certify.bab.property import BabProperty
from wdrobust.certify.bounds import BoundGraph
from wdrobust.certify.bounds.lipschitz import margin_cotangents
from wdrobust.certify.bounds.propagation import margin_bounds
from wdrobust.certify.bounds.region import Region
from wdrobust.threat import lp_norm

CASES = [
    (seed, d, norm, mode)
    for seed in range(3)
    for d in (2, 3)
    for norm in ("linf", "l2", "l1")
    for mode in ("relu", "input")
]


#: Domains bounded at most per search (no test depends on the machine's speed: no time limit binds).
LIMIT = 400


def _rows(net: torch.nn.Module, pts: torch.Tensor, y: int) -> torch.Tensor:
    """(K-1,) largest margin z_j - z_y over the points, classes j != y in increasing order."""
    z = net(pts)
    m = z - z[:, y : y + 1]
    keep = [j for j in range(z.shape[1]) if j != y]
    return m[:, keep].amax(dim=0)


@pytest.mark.parametrize(("seed", "d", "norm", "mode"), CASES)
def test_bab_never_contradicts_the_grid(seed: int, d: int, norm: str, mode: str) -> None:
    net = tiny_net(seed, d, "relu")
    graph = BoundGraph(net)
    x0 = torch.rand(d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    y = int(net(x0[None]).argmax())
    for r in (0.05, 0.15, 0.3):
        res = verify(graph, x0, y, r, norm, BabOptions(math.inf, 16, mode, max_bounded=LIMIT))
        pts = region_points(x0, r, norm, 41 if d == 2 else 13)
        with torch.no_grad():
            worst = _rows(net, pts, y)
        assert (torch.as_tensor(res.upper) >= worst - 1e-9).all()  # the anytime bound is sound
        if (worst >= 0).any():
            assert res.status != "verified"
        if res.status == "verified":
            assert (res.upper < 0).all()
        if res.status == "falsified":
            x = res.counterexample
            assert float(lp_norm((x - x0)[None], norm)[0]) <= r
            assert bool(((x >= 0) & (x <= 1)).all())
            with torch.no_grad():
                assert float(max_margin(net, x[None], y)[0]) >= 0


def test_bab_verifies_where_crown_cannot() -> None:
    """Plain CROWN leaves U >= 0 on some balls that have no flip; input and ReLU splits close them."""
    closed = {"relu": 0, "input": 0}
    for seed in range(8):
        net = tiny_net(seed, 2, "relu")
        graph = BoundGraph(net)
        x0 = torch.tensor([0.5, 0.4], dtype=torch.float64)
        y = int(net(x0[None]).argmax())
        _, c = margin_cotangents(torch.tensor([y]), 3)
        for r in (0.1, 0.2, 0.3):
            region = Region.ball(x0[None], torch.tensor([r], dtype=torch.float64), "linf")
            u, _, _ = margin_bounds(graph, region, c.double(), intermediate="crown")
            if bool((u < 0).all()):
                continue
            with torch.no_grad():
                safe = bool((_rows(net, region_points(x0, r, "linf", 81), y) < 0).all())
            for mode in closed:
                res = verify(graph, x0, y, r, "linf", BabOptions(math.inf, mode=mode, max_bounded=LIMIT))
                assert res.status == "verified" or not safe or res.status == "unknown"
                closed[mode] += res.status == "verified"
    assert closed["input"] >= 1 and closed["relu"] >= 1


@pytest.mark.parametrize("rebound", [2, 1000])
def test_bab_keeping_the_parents_boxes_never_contradicts_the_grid(rebound: int) -> None:
    """rebound > 1 (boxes bounded again every other split, or never after the root) on nets with two or
    three hidden layers: the anytime bound holds on the grid, verified only where no grid point flips;
    on some of them the search differs from rebound = 1 (the option is not ignored)."""
    differ = 0
    x0 = torch.tensor([0.5, 0.4], dtype=torch.float64)
    options = BabOptions(math.inf, 8, "relu", root_alpha_steps=0, attack_steps=3, restarts=2, max_bounded=40)
    for seed, r in ((0, 0.3), (1, 0.5), (5, 0.5)):
        net = tiny_net(seed, 2, "relu")
        assert len(net) >= 5  # two hidden layers at least
        graph = BoundGraph(net)
        y = int(net(x0[None]).argmax())
        with torch.no_grad():
            worst = _rows(net, region_points(x0, r, "linf", 41), y)
        res, every = (verify(graph, x0, y, r, "linf", replace(options, rebound=k)) for k in (rebound, 1))
        assert (torch.as_tensor(res.upper) >= worst - 1e-9).all()
        assert res.status != "verified" or bool((worst < 0).all())
        differ += (res.domains, res.upper.tolist()) != (every.domains, every.upper.tolist())
    assert differ >= 1


def test_bab_is_deterministic() -> None:
    """A search cut by its domain limit (not by time) repeats exactly, batch sizes and attacks included."""
    net = tiny_net(5, 2, "relu")
    graph = BoundGraph(net)
    x0 = torch.tensor([0.5, 0.4], dtype=torch.float64)
    for limit in (3, 40):
        a, b = (
            verify(graph, x0, 0, 0.2, "linf", BabOptions(math.inf, 4, "relu", seed=3, max_bounded=limit))
            for _ in range(2)
        )
        assert a.domains <= limit
        assert (a.status, a.domains) == (b.status, b.domains)
        assert (a.upper == b.upper).all()


def test_domain_limit_binds() -> None:
    """With room for only the root, an instance that needs splits ends unknown after one domain."""
    net = tiny_net(0, 2, "relu")
    graph = BoundGraph(net)
    x0 = torch.tensor([0.5, 0.4], dtype=torch.float64)
    y = int(net(x0[None]).argmax())
    options = BabOptions(math.inf, mode="relu", max_bounded=1, restarts=1, attack_steps=1, root_alpha_steps=0)
    for r in (0.1, 0.2, 0.3, 0.5):
        res = verify(graph, x0, y, r, "linf", options)
        assert res.domains <= 1
        if res.status == "unknown":
            return
    pytest.fail("every radius was decided at the root")


def test_bab_options_are_checked() -> None:
    with pytest.raises(ValueError, match="mode"):
        BabOptions(mode="both")
    with pytest.raises(ValueError, match="time_limit"):
        BabOptions(time_limit=0)
    with pytest.raises(ValueError, match="max_bounded"):
        BabOptions(max_bounded=0)
    with pytest.raises(ValueError, match="rebound"):
        BabOptions(rebound=0)


def test_the_search_names_its_domain_count_as_a_progress_stage(monkeypatch) -> None:
    """Inside one slow sample the progress line says how far the search is ("bab: N domains bounded")."""
    seen: list[str] = []
    inner = module.bound_domains

    def watching(*args, **kwargs):
        seen.append(current_stage())
        return inner(*args, **kwargs)

    monkeypatch.setattr(module, "bound_domains", watching)
    net = tiny_net(0, 2, "relu")
    x0 = torch.tensor([0.5, 0.4], dtype=torch.float64)
    y = int(net(x0[None]).argmax())
    options = BabOptions(math.inf, 4, "relu", max_bounded=12, root_alpha_steps=0)
    verify(BoundGraph(net), x0, y, 0.3, "linf", options)
    assert seen and seen[0].startswith("bab: 0 domains bounded, 1 open")
    assert current_stage() == ""


def test_batch_size_predicts_no_batch_that_would_not_fit() -> None:
    """Before any batch: full; one batch: cost in proportion to its size; two: a + b n up to the larger
    size, in proportion to the larger beyond it (never the line's smaller slope), in proportion when the
    line does not rise; nothing when no time is left."""
    size = module._batch_size
    assert size(256, 5.0, []) == 256
    assert size(256, 0.0, [(4, 0.1)]) == 0
    assert size(256, 1.0, [(10, 2.0)]) == 5
    two = [(2, 0.6), (10, 1.0)]  # a = 0.5, b = 0.05
    assert size(256, 0.78, two) == 5
    assert size(256, 0.45, two) == 0
    assert size(256, 2.5, two) == 25
    assert size(16, 2.5, two) == 16
    assert size(256, 0.55, [(2, 1.0), (10, 1.0)]) == 5


def test_a_batch_takes_the_worst_domains_of_the_worst_ones_kind() -> None:
    """Domains of depths 0..5 (rebound 2: depths 0, 2, 4 bound their boxes again): the worst one has
    depth 3, so the kept-box domains come first, worst first, then the others."""
    x0 = torch.tensor([0.5, 0.4], dtype=torch.float64)
    prop = BabProperty.margin(x0, 0, 0.1, "linf", 3)
    upper = torch.tensor([[0.1, -1.0], [0.2, -1.0], [0.5, -1.0], [0.9, -1.0], [0.3, -1.0], [0.4, -1.0]])
    none = torch.zeros((6, 0), dtype=torch.float64)
    queue = Domains(
        x0.expand(6, 2), torch.zeros(6), [none], [none], upper.double(), torch.zeros(6), torch.arange(6)
    )
    order, kind, count = module._order(queue, prop, 2)
    assert (kind, count) == (False, 3)
    assert order.tolist() == [3, 5, 1, 2, 4, 0]
