"""Branch and bound on general properties (certify/bab/property.py, search.solve): groups of several rows
with offsets over boxes that leave [0,1]^d, against dense grids of 2-D ReLU nets."""

from __future__ import annotations

import math

import pytest
import torch
from _certify_brute import tiny_net

from wdrobust.certify.bab.property import BabProperty
from wdrobust.certify.bab.search import BabOptions, solve
from wdrobust.certify.bounds import BoundGraph
from wdrobust.certify.bounds.region import Region


def _argmax_property(
    lo: list[float], hi: list[float], y: int, k: int = 3, offset: float = 0.0
) -> BabProperty:
    """ "Class y stays the top class by more than offset" on the box: group j (j != y) holds at x when
    z_j >= z_y + offset and z_j >= z_i for every other i (class j on top), rows (e_j - e_y, -offset)
    and (e_j - e_i, 0); these rows and groups mirror a VNN-LIB disjunction of conjunctions."""
    rows, offsets, group = [], [], []
    for g, j in enumerate(c for c in range(k) if c != y):
        for i in range(k):
            if i == j:
                continue
            row = torch.zeros(k, dtype=torch.float64)
            row[i], row[j] = -1.0, 1.0
            rows.append(row)
            offsets.append(-offset if i == y else 0.0)
            group.append(g)
    box = [torch.tensor([v], dtype=torch.float64) for v in (lo, hi)]
    return BabProperty(Region.box(*box), torch.stack(rows), torch.tensor(offsets, dtype=torch.float64),
                       torch.tensor(group))  # fmt: skip


def _box_points(lo: list[float], hi: list[float], n: int = 81) -> torch.Tensor:
    axes = [torch.linspace(a, b, n, dtype=torch.float64) for a, b in zip(lo, hi, strict=True)]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, len(lo))


def test_violation_refuted_and_worst_follow_the_groups() -> None:
    prop = _argmax_property([0.0, 0.0], [1.0, 1.0], y=0)
    # rows: group 0 (j = 1): e1 - e0, e1 - e2; group 1 (j = 2): e2 - e0, e2 - e1
    z = torch.tensor([[0.0, 2.0, 1.0], [3.0, 1.0, 2.0], [0.0, 1.0, 1.0]], dtype=torch.float64)
    assert prop.violation(z).tolist() == [1.0, -1.0, 0.0]  # class 1 on top; class 0 on top; a tie
    upper = torch.tensor([[-1.0, 5.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0]], dtype=torch.float64)
    assert prop.refuted(upper).tolist() == [[True, False], [False, False]]
    assert prop.open_rows(upper).tolist() == [[False, False, True, True], [True] * 4]
    score, row = prop.worst(upper)
    assert score.tolist() == [2.0, 3.0] and row.tolist() == [2, 2]
    assert prop.worst(torch.full((1, 4), -1.0, dtype=torch.float64))[0].item() == -torch.inf


def test_bad_properties_are_refused() -> None:
    prop = _argmax_property([0.0, 0.0], [1.0, 1.0], y=0)
    with pytest.raises(ValueError, match="groups"):
        BabProperty(prop.region, prop.spec, prop.offset, prop.group + 1)
    with pytest.raises(ValueError, match="rows"):
        BabProperty(prop.region, prop.spec, prop.offset[:2], prop.group)


BOXES = [([0.3, 0.2], [0.7, 0.5]), ([-0.5, 0.8], [0.4, 1.6]), ([0.45, 0.35], [0.55, 0.45])]


@pytest.mark.parametrize("mode", ["relu", "input"])
@pytest.mark.parametrize("seed", range(4))
def test_solve_never_contradicts_the_grid(seed: int, mode: str) -> None:
    net = tiny_net(seed, 2, "relu")
    graph = BoundGraph(net)
    decided = 0
    for lo, hi in BOXES:
        centre = torch.tensor([[(a + b) / 2 for a, b in zip(lo, hi, strict=True)]], dtype=torch.float64)
        y = int(net(centre).argmax())
        for offset in (0.0, 0.3):
            prop = _argmax_property(lo, hi, y, offset=offset)
            res = solve(graph, prop, BabOptions(math.inf, 16, mode, max_bounded=400))
            with torch.no_grad():
                s = prop.scores(net(_box_points(lo, hi)))
            assert (torch.as_tensor(res.upper) >= s.amax(dim=0) - 1e-9).all()  # the anytime bound is sound
            if (prop.violation(net(_box_points(lo, hi))) >= 0).any():
                assert res.status != "verified"
            if res.status == "falsified":
                x = res.counterexample
                assert bool(((x >= prop.region.lo[0]) & (x <= prop.region.hi[0])).all())
                with torch.no_grad():
                    assert float(prop.violation(net(x[None]))[0]) >= 0
            decided += res.status != "unknown"
    assert decided >= 4
