"""BoundGraph: the ball tightening of the affine prefix is skipped for linf only where it cannot help."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from wdrobust.certify.bounds import BoundGraph
from wdrobust.certify.bounds.region import Region


def _boxes(graph: BoundGraph, region: Region, tighten: bool = True) -> dict:
    return {n.name: (b.lo, b.hi) for n, b in graph.bounds(region, tighten=tighten).boxes.items()}


def _nets() -> dict[str, tuple[nn.Module, bool]]:
    torch.manual_seed(0)
    conv_bn = nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(48, 3)
    )
    conv_bn[1].running_mean.uniform_(-1, 1)
    conv_bn[1].running_var.uniform_(0.5, 2)
    two_linear = nn.Sequential(nn.Flatten(), nn.Linear(32, 6), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    return {"conv-bn": (conv_bn.eval(), True), "linear-linear": (two_linear.eval(), False)}


@pytest.mark.parametrize("name", ["conv-bn", "linear-linear"])
def test_linf_prefix_tightening_is_skipped_only_where_intervals_are_exact(name: str, monkeypatch) -> None:
    net, exact = _nets()[name]
    graph = BoundGraph(net.double())
    assert graph.box_exact_prefix is exact
    x0 = torch.rand(4, 2, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    region = Region.ball(x0, torch.tensor([0.01, 0.1, 0.3, 1.0], dtype=torch.float64), "linf")
    default, plain = _boxes(graph, region), _boxes(graph, region, tighten=False)
    monkeypatch.setattr(graph, "box_exact_prefix", False)
    tightened = _boxes(graph, region)
    changed = False
    for key, (lo, hi) in tightened.items():
        # the ball never loosens a box; the default is the tightened box (skipped only where equal)
        assert (lo >= plain[key][0] - 1e-12).all() and (hi <= plain[key][1] + 1e-12).all()
        torch.testing.assert_close(default[key], (lo, hi), rtol=0, atol=1e-12)
        changed |= bool(
            ((lo - plain[key][0]).abs() > 1e-9).any() or ((hi - plain[key][1]).abs() > 1e-9).any()
        )
    assert changed is not exact
