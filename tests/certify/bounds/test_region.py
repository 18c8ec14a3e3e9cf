"""General input boxes and linear specifications in the bound engine (certify.bounds.region, .spec):
sound against dense sampling on tiny nets, boxes outside [0, 1] included."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from wdrobust.certify.bounds import BoundGraph
from wdrobust.certify.bounds.propagation import concretize
from wdrobust.certify.bounds.region import Region
from wdrobust.certify.bounds.spec import refuted, spec_lower

#: (intermediate, alpha steps) of every bound ``spec_lower`` offers.
MODES = [(None, 0), ("ibp", 0), ("crown", 0), ("auto", 0), ("crown", 5)]


def tiny_net(seed: int, act: type[nn.Module]) -> nn.Module:
    torch.manual_seed(seed)
    return (
        nn.Sequential(nn.Linear(2, 12), act(), nn.Linear(12, 12), act(), nn.Linear(12, 3))
        .double()
        .requires_grad_(False)
    )


def grid(lo: torch.Tensor, hi: torch.Tensor, n: int = 81) -> torch.Tensor:
    """n x n points of the 2-D box [lo, hi], corners included."""
    a, b = (torch.linspace(0, 1, n, dtype=torch.float64),) * 2
    u = torch.cartesian_prod(a, b)
    return lo + u * (hi - lo)


@pytest.mark.parametrize("act", [nn.ReLU, nn.Tanh])
@pytest.mark.parametrize(("intermediate", "alpha"), MODES)
def test_spec_lower_is_below_every_sampled_value_on_general_boxes(act, intermediate, alpha) -> None:
    net = tiny_net(3, act)
    graph = BoundGraph(net)
    lo = torch.tensor([[-3.0, 0.5], [1.5, -0.2], [0.1, 0.1]], dtype=torch.float64)
    hi = torch.tensor([[-1.0, 4.0], [1.6, 0.3], [0.9, 0.2]], dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    c = torch.randn(3, 5, 3, generator=gen, dtype=torch.float64)
    d = torch.randn(3, 5, generator=gen, dtype=torch.float64)
    lower = spec_lower(graph, Region.box(lo, hi), c, d, intermediate=intermediate, alpha_steps=alpha)
    for b in range(3):
        values = net(grid(lo[b], hi[b])) @ c[b].T + d[b]
        assert (lower[b] <= values.amin(dim=0) + 1e-9).all()
        assert (lower[b] > values.amin(dim=0) - 50).all()  # a bound, not -inf


def test_crown_is_tighter_than_intervals_on_a_box() -> None:
    net = tiny_net(4, nn.ReLU)
    graph = BoundGraph(net)
    lo, hi = (
        torch.tensor([[2.0, -1.0]], dtype=torch.float64),
        torch.tensor([[2.1, -0.9]], dtype=torch.float64),
    )
    c = torch.eye(3, dtype=torch.float64)[None]
    d = torch.zeros(1, 3, dtype=torch.float64)
    region = Region.box(lo, hi)
    ibp = spec_lower(graph, region, c, d)
    crown = spec_lower(graph, region, c, d, intermediate="crown")
    assert (crown >= ibp - 1e-12).all() and (crown > ibp + 1e-6).any()


def test_graph_boxes_contain_the_outputs_of_a_box_outside_the_unit_cube() -> None:
    net = tiny_net(5, nn.Tanh)
    graph = BoundGraph(net)
    lo, hi = (
        torch.tensor([[-5.0, 2.0]], dtype=torch.float64),
        torch.tensor([[-4.0, 7.0]], dtype=torch.float64),
    )
    z = graph.bounds(Region.box(lo, hi)).boxes[graph.output]
    out = net(grid(lo[0], hi[0]))
    assert (z.lo[0] <= out.amin(dim=0) + 1e-12).all() and (out.amax(dim=0) <= z.hi[0] + 1e-12).all()


def test_the_ball_region_is_the_threat_models_and_the_box_region_its_box() -> None:
    x0 = torch.tensor([[0.05, 0.5]], dtype=torch.float64)
    ball = Region.ball(x0, torch.tensor([0.1], dtype=torch.float64), "l2")
    assert ball.lo.tolist() == [[0.0, 0.4]] and torch.allclose(ball.hi, torch.tensor([[0.15, 0.6]]).double())
    box = Region.box(torch.tensor([[-2.0, 0.0]]), torch.tensor([[2.0, 1.0]]))
    assert box.x0.tolist() == [[0.0, 0.5]] and box.r.tolist() == [2.0] and box.norm == "linf"
    # concretisation over a box is exact: A+ . hi + A- . lo
    a = torch.tensor([[[1.0, -3.0]]])
    assert concretize(a, torch.zeros(1, 1), box).item() == pytest.approx(2.0 - 0.0)
    with pytest.raises(ValueError, match="lower end"):
        Region.box(torch.ones(1, 2), torch.zeros(1, 2))


def test_a_disjunct_is_refuted_when_some_row_is_positive() -> None:
    lower = torch.tensor([[0.5, -1.0, -1.0, -2.0, 0.1]])
    disjunct = torch.tensor([0, 0, 1, 2, 2])
    assert refuted(lower, disjunct, 3).tolist() == [[True, False, True]]
