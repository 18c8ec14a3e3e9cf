"""Operator coverage of the bound engine: every architecture of wdrobust.nets (ReLU and SiLU), a graph
with every supported operation in module and functional form, and a clear error for unsupported ones."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from wdrobust import nets
from wdrobust.certify.bounds import BoundGraph, margin_lipschitz
from wdrobust.nets.gradients import margin_gradients
from wdrobust.nets.layers import Normalize
from wdrobust.threat import dual_of, lp_norm


def check_sound(model: nn.Module, shape: tuple[int, ...], norm: str, r: float, samples: int = 24) -> None:
    """margin_lipschitz is finite and dominates ||grad m_j||_* at random points of B(x, r) cap [0,1]^d."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, *shape, generator=g)
    y = torch.tensor([0, 1])
    lip = margin_lipschitz(model, x, y, [r], norm, device="cpu")[:, :, 0]
    assert torch.isfinite(lip).all()
    for i in range(2):
        delta = (torch.rand(samples, *shape, generator=g) * 2 - 1) * r
        delta = delta * (r / lp_norm(delta, norm).clamp(min=r))[:, None, None, None].reshape(
            -1, *[1] * len(shape)
        )
        pts = (x[i] + delta).clamp(0, 1)
        _, grad = margin_gradients(model, pts, y[i].expand(samples))
        gn = lp_norm(grad.reshape(-1, *shape), dual_of(norm)).reshape(samples, -1).amax(dim=0)
        assert (gn <= lip[i] * (1 + 1e-4) + 1e-6).all()


SMALL = {
    "mlp": {"widths": (16, 8)},
    "cnn": {"widths": (4, 8), "hidden": 16},
    "resnet18": {},
    "preact_resnet18": {},
    "wide_resnet": {"depth": 10, "widen_factor": 1},
}


@pytest.mark.parametrize("activation", ["relu", "silu"])
@pytest.mark.parametrize("arch", list(SMALL))
def test_architectures_are_certifiable(arch: str, activation: str) -> None:
    torch.manual_seed(0)
    model = nets.build(arch, input_shape=(1, 8, 8), activation=activation, **SMALL[arch]).eval()
    with torch.no_grad():  # non-trivial running statistics
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    check_sound(model, (1, 8, 8), "linf", 0.01)


class EveryOp(nn.Module):
    """Normalize, conv + BN, max/avg pooling, residual add, functional activations, view, linear."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = Normalize([0.5], [0.25])
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.avg = nn.AdaptiveAvgPool2d(2)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(16, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.bn(self.conv(self.norm(x))), 0.1)
        h = self.pool(h)
        h = h + F.elu(self.conv2(h)) * 0.5 - 0.1
        h = F.max_pool2d(F.gelu(h), 2, 1, 1) / 2
        h = F.avg_pool2d(torch.relu(h), 2)
        h = self.drop(self.avg(F.silu(h)))
        return self.fc(h.view(h.size(0), -1))


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_every_supported_operation(norm: str) -> None:
    torch.manual_seed(1)
    model = EveryOp().eval()
    with torch.no_grad():
        model.bn.running_mean.uniform_(-0.2, 0.2)
        model.bn.running_var.uniform_(0.5, 2.0)
    check_sound(model, (1, 8, 8), norm, {"linf": 0.02, "l2": 0.1, "l1": 0.3}[norm], samples=64)


@pytest.mark.parametrize("activation", ["gelu", "relu"])
@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_vit_tiny_is_certifiable(activation: str, norm: str) -> None:
    torch.manual_seed(0)
    vit = nets.build("vit_tiny", input_shape=(1, 8, 8), dim=16, depth=1, heads=2, activation=activation)
    check_sound(vit.eval(), (1, 8, 8), norm, {"linf": 1e-3, "l2": 5e-3, "l1": 1e-2}[norm])


def test_unsupported_operations_are_named() -> None:
    class Exp(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.exp(x)

    with pytest.raises(ValueError, match=r"unsupported operation exp"):
        BoundGraph(Exp())

    class Square(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return (x * x).sum(dim=1, keepdim=True)

    with pytest.raises(ValueError, match="product of two intervals"):
        margin_lipschitz(Square(), torch.rand(1, 3), torch.tensor([0]), [0.1], "linf", device="cpu")
    bn = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3)).train()
    with pytest.raises(ValueError, match="BatchNorm1d"):
        margin_lipschitz(bn, torch.rand(2, 3), torch.tensor([0, 1]), [0.1], "linf", device="cpu")


def test_bad_radii_are_rejected() -> None:
    net = nn.Linear(2, 3)
    with pytest.raises(ValueError, match="positive"):
        margin_lipschitz(net, torch.rand(2, 2), torch.tensor([0, 1]), [0.0, 0.1], "linf", device="cpu")
    with pytest.raises(ValueError, match="shape"):
        margin_lipschitz(net, torch.rand(2, 2), torch.tensor([0, 1]), torch.ones(3, 2), "linf", device="cpu")
