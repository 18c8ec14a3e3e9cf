"""Brute-force references for the certificate tests: tiny random nets and dense grids over [0,1]^2."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from wdrobust.losses import loss_fn
from wdrobust.nets.gradients import margin_gradients
from wdrobust.threat import lp_norm


def tiny_mlp(
    seed: int, widths=(8, 8), activation: type[nn.Module] = nn.ReLU, d: int = 2, k: int = 3
) -> nn.Sequential:
    """A random MLP R^d -> R^k with the given hidden widths, float32, eval mode."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    fan = d
    for w in widths:
        layers += [nn.Linear(fan, w), activation()]
        fan = w
    layers.append(nn.Linear(fan, k))
    return nn.Sequential(*layers).eval()


def grid(n: int = 201, d: int = 2) -> torch.Tensor:
    """All points of a regular n^d grid over [0,1]^d, shape (n^d, d)."""
    axes = torch.linspace(0, 1, n)
    return torch.stack(torch.meshgrid(*[axes] * d, indexing="ij"), dim=-1).reshape(-1, d)


def pair_gradient_norms(model: nn.Module, points: torch.Tensor, dual: str) -> torch.Tensor:
    """||grad (z_j - z_y)(x)||_dual at every point, shape (K, G, K) indexed [y, point, j]."""
    k = model(points[:1]).shape[1]
    out = []
    for y in range(k):
        _, g = margin_gradients(model, points, torch.full((points.shape[0],), y, dtype=torch.long))
        out.append(lp_norm(g.reshape(-1, g.shape[-1]), dual).reshape(points.shape[0], k))
    return torch.stack(out)


ACTS = {
    "relu": nn.ReLU,
    "leaky": lambda: nn.LeakyReLU(0.1),
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "elu": nn.ELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}


def tiny_net(seed: int, d: int, act: str, k: int = 3) -> nn.Module:
    """A random MLP with 1-3 hidden layers of widths 3-8 in float64."""
    g = torch.Generator().manual_seed(seed)
    depth = int(torch.randint(1, 4, (1,), generator=g))
    widths = [d] + [int(w) for w in torch.randint(3, 9, (depth,), generator=g)] + [k]
    layers: list[nn.Module] = []
    for i in range(len(widths) - 1):
        lin = nn.Linear(widths[i], widths[i + 1])
        with torch.no_grad():
            lin.weight.copy_(torch.randn(lin.weight.shape, generator=g) * 1.5)
            lin.bias.copy_(torch.randn(lin.bias.shape, generator=g) * 0.5)
        layers.append(lin)
        if i < len(widths) - 2:
            layers.append(ACTS[act]())
    return nn.Sequential(*layers).double().eval()


def region_points(x: torch.Tensor, r: float, norm: str, per_axis: int) -> torch.Tensor:
    """Dense points of B(x, r) cap [0,1]^d: a grid of the clipped linf box (faces included), kept inside
    the ball, plus points on the sphere clipped to the box. x: (d,); returns (P, d)."""
    d = x.shape[0]
    axes = [
        torch.linspace(float((x[i] - r).clamp(0, 1)), float((x[i] + r).clamp(0, 1)), per_axis)
        for i in range(d)
    ]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, d).double()
    g = torch.Generator().manual_seed(0)
    dirs = torch.randn(400, d, generator=g, dtype=torch.float64)
    sphere = (x + r * dirs / lp_norm(dirs, norm)[:, None]).clamp(0, 1)
    pts = torch.cat([grid, sphere, x[None]])
    return pts[lp_norm(pts - x, norm) <= r * (1 + 1e-12)]


def box_points(d: int, seed: int) -> torch.Tensor:
    """A dense grid of [0,1]^2, or random points of [0,1]^3 plus its corners; (P, d) float64."""
    if d == 2:
        a = torch.linspace(0, 1, 61, dtype=torch.float64)
        return torch.stack(torch.meshgrid(a, a, indexing="ij"), dim=-1).reshape(-1, 2)
    g = torch.Generator().manual_seed(seed)
    corners = torch.cartesian_prod(*[torch.tensor([0.0, 1.0], dtype=torch.float64)] * 3)
    return torch.cat([torch.rand(6000, 3, generator=g, dtype=torch.float64), corners])


def check_growth(cert_cls: type, act: str, norm: str, seeds: range) -> int:
    """phi_i(t) <= phibar_i(t) for every grid point, both losses; returns the number of samples checked."""
    checked = 0
    for seed in seeds:
        d = 2 + seed % 2
        net = tiny_net(seed, d, act).float()  # certificates run in float32
        g = torch.Generator().manual_seed(50 + seed)
        x = torch.rand(3, d, generator=g)
        y = torch.randint(0, 3, (3,), generator=g)
        around = cert_cls.options_for(norm, 0.08, d)
        res = cert_cls(net, norm, losses=("ce", "margin"), device="cpu", **around).run(x, y)
        assert res.sound
        pts = box_points(d, seed).float()
        for loss in ("ce", "margin"):
            maj = res.majorants[loss]
            with torch.no_grad():
                for i in range(3):
                    yi = y[i].expand(len(pts))
                    gain = (
                        loss_fn(loss, net(pts), yi) - loss_fn(loss, net(x[i : i + 1]), y[i : i + 1])
                    ).numpy()
                    t = lp_norm(pts - x[i], norm).numpy()
                    bound = evaluate_at(maj, i, t)
                    assert (gain <= bound + 1e-5 * (1 + np.abs(bound))).all(), (
                        seed,
                        i,
                        loss,
                        (gain - bound).max(),
                    )
                    checked += 1
    return checked


def evaluate_at(maj, i: int, t: np.ndarray) -> np.ndarray:
    """phibar_i of a majorant at many distances t (P,)."""
    lo = np.concatenate([[0.0], maj.knots[i, :-1]])
    inside = np.clip(np.minimum(t[:, None], maj.knots[i]) - lo, 0.0, None)
    return np.minimum(maj.cap[i], inside @ maj.slopes[i])
