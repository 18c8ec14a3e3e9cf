"""BaB domains (certify/bab/domains.py) and branching (branching.py): splits cover their parent."""

from __future__ import annotations

import torch

from wdrobust.certify.bab.branching import choose_neurons
from wdrobust.certify.bab.domains import Domains


def _domains(d: int, widths: list[int]) -> Domains:
    return Domains(
        torch.zeros(d, 2, dtype=torch.float64),
        torch.ones(d, dtype=torch.float64),
        [torch.full((d, w), -1.0, dtype=torch.float64) for w in widths],
        [torch.full((d, w), 1.0, dtype=torch.float64) for w in widths],
        torch.zeros(d, 1, dtype=torch.float64),
        torch.full((d,), -1, dtype=torch.long),
        torch.zeros(d, dtype=torch.long),
    )


def _inside(dom: Domains, b: int, z: list[torch.Tensor]) -> torch.Tensor:
    """(P,) bool: the points z (per node (P, n)) lie in domain b's boxes."""
    ok = torch.ones(z[0].shape[0], dtype=torch.bool)
    for t, lo, hi in zip(z, dom.lo, dom.hi, strict=True):
        ok &= ((t >= lo[b]) & (t <= hi[b])).all(dim=1)
    return ok


def test_multi_neuron_splits_cover_the_parent_with_every_sign_pattern() -> None:
    parent = _domains(3, [4, 5])
    node = torch.tensor([[0, 1], [1, 1], [0, 0]])
    neuron = torch.tensor([[2, 0], [3, 4], [1, 3]])
    kids = parent.split_relu(node, neuron)
    assert len(kids) == 12 and kids.split.tolist() == [0, 1, 0] * 4
    assert (
        kids.depth.tolist() == [2] * 12
        and kids.split_relu(node.repeat(4, 1)[:, :1], neuron.repeat(4, 1)[:, :1]).depth.min() == 3
    )
    gen = torch.Generator().manual_seed(0)
    z = [2 * torch.rand(500, w, generator=gen, dtype=torch.float64) - 1 for w in (4, 5)]
    for b in range(3):
        members = torch.stack([_inside(kids, b + 3 * t, z) for t in range(4)])
        assert members.any(dim=0).all()  # every point of the parent is in a child
        assert (members.sum(dim=0) == 1).all()  # and in one only (no point has z = 0 exactly)
        for t in range(4):  # bit j of t: 0 -> z >= 0 (lo = 0), 1 -> z <= 0 (hi = 0) on split j
            for j in range(2):
                i, k = int(node[b, j]), int(neuron[b, j])
                assert (kids.lo[i][b + 3 * t, k], kids.hi[i][b + 3 * t, k]) == ((0.0, 1.0), (-1.0, 0.0))[
                    t >> j & 1
                ]


def test_choose_neurons_ranks_unstable_neurons_only() -> None:
    lo = [torch.tensor([[-1.0, 0.5, -2.0]]), torch.tensor([[-1.0, -3.0]])]
    hi = [torch.tensor([[1.0, 2.0, 1.0]]), torch.tensor([[-0.5, 1.0]])]
    lam = [torch.tensor([[1.0, 9.0, 1.0]]), torch.tensor([[9.0, 0.5]])]
    node, neuron, found = choose_neurons(lo, hi, lam, count=4)
    # intercepts -u l / (u - l): 0.5 and 2/3 on node 0, 0.75 on node 1 (x 0.5); stable ones excluded
    assert found.tolist() == [3]
    assert list(zip(node[0, :3].tolist(), neuron[0, :3].tolist(), strict=True)) == [(0, 2), (0, 0), (1, 1)]
