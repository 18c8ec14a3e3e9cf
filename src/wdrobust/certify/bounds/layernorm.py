"""Bound rule of LayerNorm over the last axis: out = gamma * y + beta, y = u rho, u = x - mean(x),
rho = (mean(u^2) + eps)^(-1/2), for rows x of n entries.

- box of u: exact for the centring map u = P x (P = I - 11^T/n): centre P c, radius (1 - 2/n) r_i + mean(r);
- box of var = mean(u^2) + eps: above by the boxes of u_j^2, below by the larger of that and
  ``variance_floor`` (the minimum of the convex quadratic over the box of x, certified by a tangent plane);
- box of y: y_i = h(u_i, S_i) = u_i / sqrt((u_i^2 + S_i)/n + eps) with S_i = sum_{j != i} u_j^2 in
  [Sl_i, Sh_i] (from the boxes of u_j^2). h is increasing in u_i and, for u_i > 0 (< 0), decreasing
  (increasing) in S_i, so y_i in [h(lu_i, S at its worst), h(hu_i, S at its best)]; also |y_i| <= sqrt(n-1)
  (u_i^2 <= (n - 1) sum_{j != i} u_j^2 because the u_j sum to 0);
- interval Jacobian: dy/du = rho (I - y y^T / n) (symmetric), so for a cotangent g of out:
  g_y = gamma g, g_u = rho (g_y - y (y . g_y) / n), g_x = P g_u, each step in interval arithmetic with
  rho in [rho_lo, rho_hi] from the box of var = mean(u^2) + eps;
- linear relaxation (per entry, affine in the row x): y_i = u_i rho is bounded by McCormick planes of the
  product (``bilinear``: the interpolations su, sl best over the boxes of u_i and rho, ``plane_choice``),
  (c_rho + su r_rho) u_i + (c_u_i - su r_u_i) rho + const above and (c_rho - sl r_rho) u_i +
  (c_u_i - sl r_u_i) rho + const below (su = sl = 0: the centre linearisation, +- r_u_i r_rho); rho
  (convex, decreasing in var) lies below its chord on [Vl, Vh] and above its tangent at V* (slope = chord
  slope); the chord needs var from below (u_j^2 >= 2 c_u_j u_j - c_u_j^2, tangents), the tangent needs var
  from above (u_j^2 <= (l_j + h_j) u_j - l_j h_j, chords); the sign of rho's coefficient picks which one
  each bound of y_i uses. Coefficients w over u become w P = w - mean(w) over x; gamma < 0 swaps the two
  bounds; then ``rowwise.choose`` keeps, per entry, the better of the affine and the constant interval bound.

Refinement by linear bounds of the input (``refine``, when linear bound propagation offers them): the box
of u from upper bounds of +-P x (the centring removes the common mode that the box of x keeps), and the
box of var from the expansion around the centre c of that box of u,

    mean(u^2) = -mean(c^2) + (2/n) c . u + mean((u - c)^2),   0 <= mean((u - c)^2) <= mean(r_u^2),

with the linear term (2/n) (P c) . x bounded by the same passes: the box of var is then of the order of
its first-order variation instead of the sum of the entries' worst cases. Both boxes are intersected
with the ones above; the box of y also with the product of the boxes of u and rho = (var + eps)^(-1/2).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Any

import torch
from torch import nn

from wdrobust.certify.bounds.bilinear import plane_choice
from wdrobust.certify.bounds.interval import Box, Cot, Slopes, scale_nonneg
from wdrobust.certify.bounds.rowwise import RowRelaxation, choose
from wdrobust.certify.bounds.rule import LinearUpper, Rule, interval_arg, register, unsupported

#: Projected gradient steps of ``variance_floor``.
VARIANCE_STEPS = 20
#: Largest per-row input size (entries of all rows of LayerNorm's input) for ``refine``: it bounds twice
#: that many linear functions of the input.
REFINE_LIMIT = 4096


@dataclass
class Pieces:
    """Boxes of the stages of LayerNorm on one batch: u (N, *L, n), u^2, var (N, *L, 1), y, out."""

    u: Box
    sq: Box
    var: Box
    y: Box
    out: Box


def centred(x: Box) -> Box:
    """The exact box of u = x - mean(x) over the last axis."""
    n = x.lo.shape[-1]
    c, r = x.center, x.radius
    radius = (1 - 2 / n) * r + r.mean(dim=-1, keepdim=True) if n > 1 else torch.zeros_like(r)
    return Box.from_center(c - c.mean(dim=-1, keepdim=True), radius)


def square_box(u: Box) -> Box:
    """The box of u^2 elementwise."""
    a, b = u.lo.square(), u.hi.square()
    low = torch.where((u.lo <= 0) & (u.hi >= 0), torch.zeros_like(a), torch.minimum(a, b))
    return Box(low, torch.maximum(a, b))


def variance_floor(x: Box, steps: int = VARIANCE_STEPS) -> torch.Tensor:
    """A lower bound (N, *L, 1) of min over the box x of v(x) = mean((x - mean x)^2), which is convex:
    projected gradient steps (step n/2 = 1/Lipschitz of the gradient (2/n) P x) from the centre reach a
    point z, and v(x) >= v(z) + grad v(z) . (x - z) bounds the minimum by v(z) + sum_i min over the
    ends of grad_i (x_i - z_i) (sound wherever the steps stop)."""
    n = x.lo.shape[-1]
    z = x.center
    for _ in range(steps):
        z = torch.minimum(torch.maximum(z - (z - z.mean(dim=-1, keepdim=True)), x.lo), x.hi)
    d = z - z.mean(dim=-1, keepdim=True)
    grad = 2 * d / n
    ends = torch.minimum(grad * (x.lo - z), grad * (x.hi - z))
    return (d.square().mean(dim=-1, keepdim=True) + ends.sum(dim=-1, keepdim=True)).clamp(min=0)


def _both(spec: torch.Tensor, upper: LinearUpper) -> tuple[torch.Tensor, torch.Tensor]:
    """(lower, upper) bounds (B, C) of spec . x for spec (B, C, *S) over the regions (argument 0)."""
    c = spec.shape[1]
    up = upper(0, torch.cat([spec, -spec], dim=1))
    return -up[:, c:], up[:, :c]


def refine(x: Box, upper: LinearUpper) -> tuple[Box, Box]:
    """Boxes (u (N, *L, n), mean(u^2) (N, *L, 1), eps not added) from linear bounds of the input x (flat
    argument 0 of upper); see the module docstring. The box of u is intersected with ``centred(x)``."""
    shape = x.lo.shape[1:]
    batch, n, m = x.lo.shape[0], shape[-1], prod(shape)
    eye = torch.eye(m, dtype=x.lo.dtype, device=x.lo.device).reshape(m, *shape)
    rows = (eye - eye.mean(dim=-1, keepdim=True)).expand(batch, *eye.shape)  # the rows of P x
    lo, hi = _both(rows, upper)
    u = centred(x).intersect(lo.reshape(x.lo.shape), hi.reshape(x.lo.shape))
    c = u.center
    pc = 2 / n * (c - c.mean(dim=-1, keepdim=True))  # (2/n) P c, (N, *L, n)
    k = m // n
    blocks = torch.eye(k, dtype=c.dtype, device=c.device).reshape(1, k, *shape[:-1], 1)
    lin_lo, lin_hi = _both(blocks * pc.unsqueeze(1), upper)  # one row of L per spec
    base = -(c * c).mean(dim=-1, keepdim=True)
    var_lo = base + lin_lo.reshape(base.shape)
    var_hi = base + lin_hi.reshape(base.shape) + u.radius.square().mean(dim=-1, keepdim=True)
    return u, Box(var_lo.clamp(min=0), var_hi)


def pieces(
    x: Box,
    gamma: torch.Tensor | None,
    beta: torch.Tensor | None,
    eps: float,
    refined: tuple[Box, Box] | None = None,
) -> Pieces:
    """The stage boxes of LayerNorm on x (rows on the last axis); formulas in the module docstring.
    refined: the boxes (u, mean(u^2)) of ``refine``, intersected with the interval ones."""
    n = x.lo.shape[-1]
    u = centred(x) if refined is None else refined[0]
    sq = square_box(u)
    floor = torch.maximum(sq.lo.mean(dim=-1, keepdim=True), variance_floor(x))
    var = Box(floor + eps, sq.hi.mean(dim=-1, keepdim=True) + eps)
    if refined is not None:
        var = var.intersect(refined[1].lo + eps, refined[1].hi + eps)
        var = Box(var.lo, torch.maximum(var.lo, var.hi))
    s_lo = (sq.lo.sum(dim=-1, keepdim=True) - sq.lo).clamp(min=0)
    s_hi = (sq.hi.sum(dim=-1, keepdim=True) - sq.hi).clamp(min=0)

    def h(v: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return v * torch.rsqrt((v * v + s) / n + eps)

    y_hi = h(u.hi, torch.where(u.hi >= 0, s_lo, s_hi))
    y_lo = h(u.lo, torch.where(u.lo >= 0, s_hi, s_lo))
    cap = float(max(n - 1, 0)) ** 0.5
    rho_lo, rho_hi = var.hi.rsqrt(), var.lo.rsqrt()  # y = u rho with rho > 0
    y_hi = torch.minimum(y_hi, torch.where(u.hi >= 0, u.hi * rho_hi, u.hi * rho_lo))
    y_lo = torch.maximum(y_lo, torch.where(u.lo >= 0, u.lo * rho_lo, u.lo * rho_hi))
    y = Box(y_lo.clamp(-cap, cap), y_hi.clamp(-cap, cap))
    out = y if gamma is None else Box.from_center(gamma * y.center, gamma.abs() * y.radius)
    if beta is not None:
        out = Box(out.lo + beta, out.hi + beta)
    return Pieces(u, sq, var, y, out)


def layernorm_relaxation(
    x: Box, p: Pieces, gamma: torch.Tensor | None, beta: torch.Tensor | None, eps: float
) -> RowRelaxation:
    """Affine bounds of LayerNorm's output entries over their input rows; see the module docstring."""
    n = x.lo.shape[-1]
    cu, ru = p.u.center, p.u.radius
    vl, vh = p.var.lo, p.var.hi  # (N, *L, 1)
    sl, sh = vl.sqrt(), vh.sqrt()
    rho_lo, rho_hi = 1 / sh, 1 / sl
    c_rho, r_rho = (rho_lo + rho_hi) / 2, (rho_hi - rho_lo) / 2
    kappa = -1 / (sl * sh * (sl + sh))  # chord slope of V^(-1/2) on [Vl, Vh] (closed form, no cancellation)
    v_star = (-2 * kappa) ** (-2.0 / 3.0)
    tangent_at = v_star.rsqrt()
    # rho <= rho(Vl) + kappa (var - Vl), var >= mean_j(2 c_j u_j - c_j^2) + eps: affine in u
    above_w = kappa * 2 * cu / n  # (N, *L, n) coefficients over u_j
    above_b = rho_hi + kappa * (-(cu * cu).mean(dim=-1, keepdim=True) + eps - vl)
    # rho >= rho(V*) + kappa (var - V*), var <= mean_j((l_j + h_j) u_j - l_j h_j) + eps
    below_w = kappa * (p.u.lo + p.u.hi) / n
    below_b = tangent_at + kappa * (-(p.u.lo * p.u.hi).mean(dim=-1, keepdim=True) + eps - v_star)
    eye = torch.eye(n, dtype=x.lo.dtype, device=x.lo.device)
    planes = plane_choice(cu, c_rho, ru, r_rho)  # (su, sl) per entry, (N, *L, n, 2)

    def bound(sign: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(w (N, *L, n, n) over u, b (N, *L, n)) of the upper (sign 1) or lower (-1) bound of y."""
        s = planes[..., 0 if sign > 0 else 1]
        on_u, on_rho = c_rho + sign * s * r_rho, cu - s * ru
        const = -cu * c_rho + sign * ru * r_rho - sign * s * cu * r_rho + s * ru * c_rho
        uses_above = ((on_rho >= 0) if sign > 0 else (on_rho < 0)).unsqueeze(-1)  # (N, *L, n, 1)
        rho_w = torch.where(uses_above, above_w.unsqueeze(-2), below_w.unsqueeze(-2))
        rho_b = torch.where(uses_above[..., 0], above_b, below_b)
        w = on_u.unsqueeze(-1) * eye + on_rho.unsqueeze(-1) * rho_w
        return w, on_rho * rho_b + const

    (w_up, b_up), (w_lo, b_lo) = bound(1.0), bound(-1.0)
    if gamma is not None:
        g = gamma.unsqueeze(-1)
        neg = (gamma < 0).unsqueeze(-1)
        w_up, w_lo = torch.where(neg, g * w_lo, g * w_up), torch.where(neg, g * w_up, g * w_lo)
        b_up, b_lo = (
            torch.where(gamma < 0, gamma * b_lo, gamma * b_up),
            torch.where(gamma < 0, gamma * b_up, gamma * b_lo),
        )
    if beta is not None:
        b_up, b_lo = b_up + beta, b_lo + beta
    # over x: w P = w - mean over the input axis
    w_up = w_up - w_up.mean(dim=-1, keepdim=True)
    w_lo = w_lo - w_lo.mean(dim=-1, keepdim=True)
    return choose(RowRelaxation(w_lo, b_lo, w_up, b_up), x, p.out)


@register(nn.LayerNorm)
class LayerNormRule(Rule):
    """nn.LayerNorm over the last axis (normalized_shape of length 1); see the module docstring."""

    nonlinear = True
    relaxed = True
    compounding = True

    def _params(self, x: Box) -> tuple[torch.Tensor | None, torch.Tensor | None, float]:
        m = self.op
        if len(m.normalized_shape) != 1 or x.lo.shape[-1] != m.normalized_shape[0]:
            raise unsupported("LayerNorm", self.name, "only normalisation over the last axis")
        return m.weight, m.bias, float(m.eps)

    def forward(self, *args: Any, **kwargs: Any) -> Box:
        x = interval_arg(self, args)
        self.gamma, self.beta, self.eps = self._params(x)
        self.p = pieces(x, self.gamma, self.beta, self.eps)
        self.stable = x.radius.flatten(1).amax(dim=1) == 0
        return self.p.out

    def backward(self, cot: Cot) -> tuple[Cot | None, ...]:
        n = self.p.y.lo.shape[-1]
        gc, gr = cot.center, cot.radius
        if self.gamma is not None:
            gc, gr = gc * self.gamma, None if gr is None else gr * self.gamma.abs()
        yc, yr = self.p.y.center.unsqueeze(1), self.p.y.radius.unsqueeze(1)
        # t = y . g_y (interval dot product, midpoint-radius)
        tc = (yc * gc).sum(dim=-1, keepdim=True)
        tr = (yr * gc.abs()).sum(dim=-1, keepdim=True)
        if gr is not None:
            tr = tr + ((yc.abs() + yr) * gr).sum(dim=-1, keepdim=True)
        # q = g_y - y t / n
        qc = gc - yc * tc / n
        qr = (yc.abs() * tr + yr * tc.abs() + yr * tr) / n
        if gr is not None:
            qr = qr + gr
        rho = Slopes(self.p.var.hi.rsqrt(), self.p.var.lo.rsqrt())
        g_u = scale_nonneg(Cot(qc, qr.expand_as(qc).clone()), rho)
        assert g_u.radius is not None
        radius = (1 - 2 / n) * g_u.radius + g_u.radius.mean(dim=-1, keepdim=True) if n > 1 else g_u.radius * 0
        return (Cot(g_u.center - g_u.center.mean(dim=-1, keepdim=True), radius),)

    def relax(self, inputs: list[Box | None], upper: LinearUpper | None = None) -> RowRelaxation:
        x = inputs[0]
        assert x is not None
        refined = refine(x, upper) if upper is not None and prod(x.lo.shape[1:]) <= REFINE_LIMIT else None
        p = pieces(x, self.gamma, self.beta, self.eps, refined)
        return layernorm_relaxation(x, p, self.gamma, self.beta, self.eps)

    def linear_backward(
        self, lam: torch.Tensor, rel: RowRelaxation
    ) -> tuple[tuple[torch.Tensor | None, ...], torch.Tensor]:
        coef, bias = rel.backward(lam)
        return (coef,), bias
