"""The ``cell`` certificate (ReLU / LeakyReLU networks): exact growth on x_i's activation cell, sound beyond.

On the cell of x_i the network is affine, so m_j(x_i + delta) - m_j(x_i) = <g_ij, delta> with
g_ij = grad m_j(x_i), as long as x_i + delta stays in the cell. The ball B(x_i, rho_i) lies in the cell for
the inscribed radius rho_i = min_k |a_k(x_i)| / ||grad a_k||_* over all pre-activations a_k (computed
exactly by forward-mode differentiation when d <= EXACT_DIM; otherwise a sound lower bound: the largest
radius, found by bisection, on which interval propagation proves every neuron stable). Growth of m_j:

    t <= rho_i:  phi_ij(t) = sum_k |g_ijk| min(t, room_ijk), room = 1 - x_k if g_k > 0 else x_k   (linf,
                 box clipping included, exact);  ||g_ij||_* t for l2 / l1 (exact without the box);
    t >  rho_i:  phi_ij(rho_i) + the local shells' growth from rho_i to t (``local``; sound because the
                 segment from x_i to x' crosses distance rho_i once).

The curve is the integral of a slope profile s_ij(t); on any grid of knots, the sup of s_ij over each
segment is a sound slope (knots at every break point make it exact). ce and margin take the largest
class slope per segment (losses.lipschitz_from_margins).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.autograd import forward_ad as fwAD

from wdrobust.certify.base import ShellBound, box_diameter
from wdrobust.certify.bounds import BoundGraph, stable_rows
from wdrobust.certify.local import LocalCertificate
from wdrobust.nets.gradients import margin_gradients
from wdrobust.threat import dual_of, lp_norm

#: Functional and method forms of the piecewise-linear activations.
PIECEWISE_LINEAR = (F.relu, torch.relu, "relu", F.leaky_relu)
#: Input dimension up to which rho_i is computed exactly (forward mode over the d basis directions).
EXACT_DIM = 1024
#: Bisection steps of the stable-radius lower bound.
BISECTION_STEPS = 20
#: Cotangent budget per chunk of the forward-mode pass (samples x d x widest pre-activation).
CHUNK_ENTRIES = 1 << 24


def preactivation_nodes(graph: BoundGraph) -> list[fx.Node]:
    """Inputs of the graph's activations; ValueError unless every nonlinearity is ReLU or LeakyReLU."""
    nodes = []
    for node, rule in graph.rule_of.items():
        if not rule.nonlinear:
            continue
        op = graph.gm.get_submodule(node.target) if node.op == "call_module" else node.target
        if not (isinstance(op, nn.ReLU | nn.LeakyReLU) or op in PIECEWISE_LINEAR):
            kind = type(op).__name__ if isinstance(op, nn.Module) else getattr(op, "__name__", str(op))
            raise ValueError(f"cell certificate needs ReLU/LeakyReLU networks; found {kind} ({node.name})")
        nodes.append(node.args[0])
    return nodes


def inscribed_radius_exact(graph: BoundGraph, x: torch.Tensor, norm: str) -> torch.Tensor:
    """rho_i = min_k |a_k(x_i)| / ||grad a_k(x_i)||_* over all pre-activations, (n,); inf without any.

    Gradients of all pre-activations by forward-mode differentiation along the d input basis directions.
    """
    pre = preactivation_nodes(graph)
    n, d = x.shape[0], math.prod(x.shape[1:])
    if not pre:
        return x.new_full((n,), math.inf)
    widest = max(graph.evaluate(x[:1])[p].numel() for p in pre)
    step = max(1, CHUNK_ENTRIES // (d * widest))
    eye = torch.eye(d, dtype=x.dtype, device=x.device).reshape(d, *x.shape[1:])
    out = []
    for s in range(0, n, step):
        xs = x[s : s + step]
        m = xs.shape[0]
        with torch.no_grad(), fwAD.dual_level():
            env = graph.evaluate(
                fwAD.make_dual(xs.repeat_interleave(d, dim=0), eye.repeat((m,) + (1,) * (eye.dim() - 1)))
            )
            rho = x.new_full((m,), math.inf)
            for p in pre:
                primal, tangent = fwAD.unpack_dual(env[p])
                value = primal.reshape(m, d, -1)[:, 0]  # (m, units)
                grad = tangent.reshape(m, d, -1).transpose(1, 2).reshape(-1, d)  # (m * units, d)
                gn = lp_norm(grad, dual_of(norm)).reshape(m, -1)
                ratio = torch.where(gn > 0, value.abs() / gn.clamp(min=1e-300), torch.full_like(gn, math.inf))
                rho = torch.minimum(rho, ratio.amin(dim=1))
        out.append(rho)
    return torch.cat(out)


def inscribed_radius_bound(graph: BoundGraph, x: torch.Tensor, norm: str, top: float) -> torch.Tensor:
    """A sound lower bound on rho_i: the largest bisection radius in [0, top] proven stable, (n,)."""
    lo = x.new_zeros(x.shape[0])
    hi = x.new_full((x.shape[0],), top)
    with torch.no_grad():
        for _ in range(BISECTION_STEPS):
            mid = (lo + hi) / 2
            ok = stable_rows(graph, x, mid, norm)
            lo = torch.where(ok, mid, lo)
            hi = torch.where(ok, hi, mid)
    return lo


def strictly_increasing(knots: torch.Tensor, top: float) -> torch.Tensor:
    """Sort (n, S) knots into (0, top], separate ties by tiny downward steps, end exactly at top.

    v_k = min_{i >= k} (u_i - (i - k) delta) keeps the last of equal knots in place, so a break point
    stays a knot. Work in float64 (the steps are below float32 resolution). Only the slopes depend on the
    data: any strictly increasing grid gives a sound majorant when the slopes are sups of the slope
    profile over the segments.
    """
    s = knots.shape[1] + 1
    delta = top * 1e-10
    full = torch.cat([knots, knots.new_full((knots.shape[0], 1), top)], dim=1)
    u = full.clamp(min=2 * s * delta, max=top).sort(dim=1).values
    steps = torch.arange(s, device=u.device, dtype=u.dtype) * delta
    return steps + torch.cummin((u - steps).flip(1), dim=1).values.flip(1)


def exact_slopes(a: torch.Tensor, x: torch.Tensor, g: torch.Tensor, norm: str) -> torch.Tensor:
    """Right slope s_ij(a+) of the exact cell growth at a (n, S): (n, K, S).

    linf: sum_k |g_ijk| 1[room_ijk > a]; l2 / l1: ||g_ij||_*. x (n, d), g (n, K, d).
    """
    n, k, d = g.shape
    if norm != "linf":
        return lp_norm(g, dual_of(norm), batch_dims=2)[:, :, None].expand(n, k, a.shape[1])
    room = torch.where(g > 0, 1 - x[:, None, :], x[:, None, :].expand(n, k, d))
    room, order = room.sort(dim=2)
    w = g.abs().gather(2, order)
    suffix = torch.cat([w.flip(2).cumsum(2).flip(2), w.new_zeros(n, k, 1)], dim=2)  # (n, K, d + 1)
    idx = torch.searchsorted(room.contiguous(), a[:, None, :].expand(n, k, -1).contiguous(), right=True)
    return suffix.gather(2, idx)


def shell_slopes(
    a: torch.Tensor, b: torch.Tensor, start: torch.Tensor, radii: torch.Tensor, lip: torch.Tensor
) -> torch.Tensor:
    """sup of the shell profile over (max(a, start), b]: (n, K, S); 0 where that interval is empty.

    a, b: (n, S) segment ends; start: (n,); radii: (M,) outer shell radii; lip: (n, K, M).
    """
    lo = torch.maximum(a, start[:, None])
    inner = torch.cat([radii.new_zeros(1), radii[:-1]])
    out = lip.new_zeros((lip.shape[0], lip.shape[1], a.shape[1]))
    for m in range(radii.shape[0]):
        hit = (inner[m] < b) & (radii[m] > lo) & (b > lo)  # (n, S): shell m meets the segment
        out = torch.maximum(out, torch.where(hit[:, None, :], lip[:, :, m : m + 1], out.new_zeros(())))
    return out


class CellCertificate(LocalCertificate):
    """Exact growth on the activation cell of each sample, local shells beyond (ReLU / LeakyReLU)."""

    name = "cell"
    sound = True

    def cell_radius(self, x: torch.Tensor) -> torch.Tensor:
        """rho_i (n,): exact for d <= EXACT_DIM, else a sound lower bound (stability bisection)."""
        graph = self.graph()
        preactivation_nodes(graph)
        d = x[0].numel()
        if d <= EXACT_DIM:
            return inscribed_radius_exact(graph, x, self.norm)
        return inscribed_radius_bound(graph, x, self.norm, box_diameter(self.norm, d))

    def _bound_batch(self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, **batch: Any) -> ShellBound:
        n, d = x.shape[0], x[0].numel()
        diam = box_diameter(self.norm, d)
        rho = self.cell_radius(x).clamp(max=diam).double()
        lip, shells = self.shell_lipschitz(x, y)
        lip, radii = lip.double(), shells[0].double()
        radii[-1] = diam  # the last shell is the whole box (margin_lipschitz bounds it as such)
        _, g = margin_gradients(self.model, x, y)
        g = g.reshape(n, g.shape[1], d).double()
        flat = x.reshape(n, d).double()
        r = rho[:, None]
        parts = [r, torch.maximum(radii[None, :-1], r)]
        if self.norm == "linf":
            rooms = torch.cat([flat, 1 - flat], dim=1)
            parts.insert(0, torch.where(rooms > 0, torch.minimum(rooms, r), r))
        knots = strictly_increasing(torch.cat(parts, dim=1), diam)
        a = torch.cat([knots.new_zeros(n, 1), knots[:, :-1]], dim=1)
        inside = (a < r)[:, None, :]
        exact = torch.where(inside, exact_slopes(a, flat, g, self.norm), g.new_zeros(()))
        slopes = torch.maximum(exact, shell_slopes(a, knots, rho, radii, lip))
        return ShellBound.from_margins(slopes, knots, z, y, self.losses, cell_radius=rho)
