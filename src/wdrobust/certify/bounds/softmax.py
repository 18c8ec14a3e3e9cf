"""Bound rule of softmax over one axis (the attention weights of a transformer).

Write s_i = phi(w_i) with phi(w) = 1 / (1 + w) and w_i = sum_{j != i} exp(d_ij), d_ij = x_j - x_i. Over a
box x in [lo, hi] (rows of n entries along the softmax axis):

- box: s_i is increasing in x_i and decreasing in every x_j, so exactly
  s_i in [sigmoid(-LSE_{j!=i}(hi_j - lo_i)), sigmoid(-LSE_{j!=i}(lo_j - hi_i))];
- interval Jacobian: ds_k/dx_i = s_k (delta_ki - s_i), so for a cotangent g, g_x = s * (g - t) with
  t = s . g, bounded by the interval dot product of the box of s with g and by [min g, max g] (t is a
  convex combination of the g_i); the product with s >= 0 is the exact hull;
- linear relaxation: d_ij in [dl, du] = [lo_j - hi_i, hi_j - lo_i]; exp is convex, phi convex decreasing.
  Upper: exp(d) >= e^t (1 + d - t) (tangent; t the point where exp' equals the chord slope, at most
  EXP_LIMIT) gives an affine w_i >= wlin_i(x), and phi(w) <= phi(wl) + kappa (w - wl) with kappa the
  chord slope of phi on [wl, wu] (<= 0), so s_i <= phi(wl) + kappa (wlin_i(x) - wl). Lower: exp(d) <=
  chord on [dl, du] gives w_i <= wup_i(x), and phi(w) >= phi(w*) + phi'(w*)(w - w*) (tangent at w*, where
  phi' equals phi's chord slope), so s_i >= phi(w*) + phi'(w*)(wup_i(x) - w*). Where some du exceeds
  EXP_LIMIT (wu overflows) the constant interval bounds are used; ``rowwise.choose`` then keeps, per
  entry, the better of the affine and the constant bound.

Backward: the entries of a row sum to 1, so lam . s = t + (lam - t) . s for any t per row, exactly; with
t the median of lam over the row, the relaxation's gaps count with |lam_i - t| instead of |lam_i| (a
product with values that share a large common part, as attention weights times values, gives lam with a
large common part).

Refinement by linear bounds of the input (``refine``, when linear bound propagation offers them): the box
[dl, du] of every difference d_ij = x_j - x_i from upper bounds of +-(e_j - e_i) . x (entries of a row are
correlated, so this is tighter than lo_j - hi_i); the box of s and the relaxation above then use it (both
only need d_ij in [dl, du]): s_i in [sigmoid(-LSE_{j!=i} du_ij), sigmoid(-LSE_{j!=i} dl_ij)].
"""

from __future__ import annotations

from math import prod
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from wdrobust.certify.bounds.bilinear import interval_matmul
from wdrobust.certify.bounds.interval import Box, Cot, Slopes, scale_nonneg
from wdrobust.certify.bounds.rowwise import RowRelaxation, choose
from wdrobust.certify.bounds.rule import LinearUpper, Rule, interval_arg, register, unsupported

#: Largest exponent used in the affine bounds; beyond it the constant bounds are used.
EXP_LIMIT = 40.0
#: Largest number of differences (rows x n x n per batch row) bounded by ``refine``.
REFINE_LIMIT = 4096


def _pairs(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """M[..., i, j] = a_j - b_i, shape (..., n, n)."""
    return a.unsqueeze(-2) - b.unsqueeze(-1)


def _off_diagonal(m: torch.Tensor, fill: float) -> torch.Tensor:
    n = m.shape[-1]
    eye = torch.eye(n, dtype=torch.bool, device=m.device)
    return m.masked_fill(eye, fill)


def differences(x: Box) -> Box:
    """The box (..., n, n) of d_ij = x_j - x_i over the box x (..., n) (zero on the diagonal)."""
    return Box(_off_diagonal(_pairs(x.lo, x.hi), 0.0), _off_diagonal(_pairs(x.hi, x.lo), 0.0))


def box_of_differences(d: Box) -> Box:
    """The exact box of softmax over the last axis for differences d_ij in the box d (..., n, n)."""
    neg = float("-inf")
    low = torch.sigmoid(-torch.logsumexp(_off_diagonal(d.hi, neg), dim=-1))
    high = torch.sigmoid(-torch.logsumexp(_off_diagonal(d.lo, neg), dim=-1))
    return Box(low, high)


def softmax_box(lo: torch.Tensor, hi: torch.Tensor) -> Box:
    """The exact box of softmax over the last axis for x in [lo, hi]; see the module docstring."""
    return box_of_differences(differences(Box(lo, hi)))


def difference_specs(shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    """Rows (k n n, *shape) of the linear functions d_ij = x_j - x_i of each row of x (shape (*L, n), k
    rows), ordered as the entries of the difference box (*L, n, n)."""
    n = shape[-1]
    k = prod(shape) // n
    eye = torch.eye(n, dtype=like.dtype, device=like.device)
    pair = eye.unsqueeze(0) - eye.unsqueeze(1)  # [i, j] = e_j - e_i, (n, n, n)
    rows = torch.eye(k, dtype=like.dtype, device=like.device)
    spec = rows[:, None, None, :, None] * pair[None, :, :, None, :]  # (k, n, n, k, n)
    return spec.reshape(k * n * n, *shape)


def softmax_relaxation(x: Box, d: Box) -> RowRelaxation:
    """Affine bounds of softmax over the last axis on the box x whose differences d_ij = x_j - x_i lie in
    the box d (``differences(x)`` or tighter); see the module docstring."""
    out = box_of_differences(d)
    dl, du = d.lo, d.hi
    off = _off_diagonal(torch.ones_like(dl), 0.0)
    big = (du.amax(dim=-1) > EXP_LIMIT) | (dl.amax(dim=-1) > EXP_LIMIT)  # (N, *L, n)
    dl_c, du_c = dl.clamp(max=EXP_LIMIT), du.clamp(max=EXP_LIMIT)
    width = du_c - dl_c
    # chord slope of exp on [dl, du] (e^dl expm1(w) / w on narrow intervals, against cancellation)
    narrow = width < 1e-3
    w_safe = torch.where(narrow, width.clamp(min=1e-300), torch.ones_like(width))
    w_wide = torch.where(narrow, torch.ones_like(width), width)
    m = torch.where(
        narrow,
        torch.exp(dl_c) * torch.where(width > 0, torch.expm1(w_safe) / w_safe, torch.ones_like(width)),
        (torch.exp(du_c) - torch.exp(dl_c)) / w_wide,
    )
    m = m * off
    wl = (torch.exp(dl_c) * off).sum(dim=-1)
    wu = (torch.exp(du_c) * off).sum(dim=-1)
    # upper bound of s_i: tangents of exp where exp' equals the chord slope (any tangent is sound)
    t = torch.log(m.clamp(min=1e-300))
    t = torch.minimum(torch.maximum(t, dl_c), du_c).clamp(min=-700.0)
    e = torch.exp(t) * off
    const_up = (e * (1 - t)).sum(dim=-1)
    kappa = -1.0 / ((1 + wl) * (1 + wu))  # chord slope of phi on [wl, wu]
    phi_wl = 1.0 / (1 + wl)

    def rows(coef: torch.Tensor, scale_: torch.Tensor) -> torch.Tensor:
        """w[..., i, j] = scale_i coef_ij (j != i), w_ii = -scale_i sum_j coef_ij."""
        w = scale_.unsqueeze(-1) * coef
        return w - torch.diag_embed(w.sum(dim=-1))

    w_up = rows(e, kappa)
    b_up = phi_wl + kappa * (const_up - wl)
    # lower bound of s_i
    w_star = torch.sqrt((1 + wl) * (1 + wu)) - 1
    slope = -1.0 / (1 + w_star) ** 2
    const_lo = ((torch.exp(dl_c) - m * dl) * off).sum(dim=-1)
    w_lo = rows(m, slope)
    b_lo = 1.0 / (1 + w_star) + slope * (const_lo - w_star)
    zero = torch.zeros_like(w_up)
    rel = RowRelaxation(
        torch.where(big.unsqueeze(-1), zero, w_lo),
        torch.where(big, out.lo, b_lo),
        torch.where(big.unsqueeze(-1), zero, w_up),
        torch.where(big, out.hi, b_up),
    )
    return choose(rel, x, out)


def _col(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.unsqueeze(-1)


def jacobian_box(s: Box) -> tuple[torch.Tensor, torch.Tensor]:
    """(centre, radius) (N, *L, n, n) of the softmax Jacobian M_ki = s_k (delta_ki - s_i) entrywise over
    the box of s: diagonal s_k - s_k^2 (concave, maximal at 1/2), off-diagonal -s_k s_i."""
    lo_off = -(s.hi.unsqueeze(-1) * s.hi.unsqueeze(-2))
    hi_off = -(s.lo.unsqueeze(-1) * s.lo.unsqueeze(-2))
    f = lambda v: v - v * v  # noqa: E731
    d_lo = torch.minimum(f(s.lo), f(s.hi))
    d_hi = f(torch.maximum(s.lo, s.hi.clamp(max=0.5)))  # f at the point of [lo, hi] nearest to 1/2
    lo = lo_off.diagonal_scatter(d_lo, dim1=-2, dim2=-1)
    hi = hi_off.diagonal_scatter(d_hi, dim1=-2, dim2=-1)
    return (lo + hi) / 2, (hi - lo) / 2


@register(nn.Softmax, F.softmax, torch.softmax, "softmax")
class SoftmaxRule(Rule):
    """softmax along one axis (any axis but the batch); see the module docstring."""

    nonlinear = True
    relaxed = True
    compounding = True

    def forward(self, *args: Any, **kwargs: Any) -> Box:
        x = interval_arg(self, args)
        if isinstance(self.op, nn.Module):
            dim = self.op.dim
        else:
            opts = dict(zip(("dim",), args[1:], strict=False)) | kwargs
            if opts.get("dtype") is not None:
                raise unsupported("softmax", self.name, "a dtype argument")
            dim = opts.get("dim")
        if dim is None:
            raise unsupported("softmax", self.name, "an implicit dim")
        self.dim = int(dim) % x.lo.dim()
        if self.dim == 0:
            raise unsupported("softmax", self.name, "along the batch axis")
        self.n_args = len(args)
        last = self._last(x)
        out = softmax_box(last.lo, last.hi)
        self.s = out
        self.stable = x.radius.flatten(1).amax(dim=1) == 0
        return Box(out.lo.movedim(-1, self.dim), out.hi.movedim(-1, self.dim))

    def _last(self, x: Box) -> Box:
        return Box(x.lo.movedim(self.dim, -1), x.hi.movedim(self.dim, -1))

    def backward(self, cot: Cot) -> tuple[Cot | None, ...]:
        d = self.dim + 1  # the class axis
        gc = cot.center.movedim(d, -1)
        gr = None if cot.radius is None else cot.radius.movedim(d, -1)
        sc, sr = self.s.center.unsqueeze(1), self.s.radius.unsqueeze(1)
        # t = s . g: the interval dot product, intersected with [min g, max g]
        tc = (sc * gc).sum(dim=-1, keepdim=True)
        tr = (sr * gc.abs()).sum(dim=-1, keepdim=True)
        glo, ghi = (gc, gc) if gr is None else (gc - gr, gc + gr)
        if gr is not None:
            tr = tr + ((sc + sr) * gr).sum(dim=-1, keepdim=True)
        t_lo = torch.maximum(tc - tr, glo.amin(dim=-1, keepdim=True))
        t_hi = torch.minimum(tc + tr, ghi.amax(dim=-1, keepdim=True))
        diff_c = gc - (t_lo + t_hi) / 2
        diff_r = (t_hi - t_lo) / 2 + (0 if gr is None else gr)
        out = scale_nonneg(Cot(diff_c, diff_r.expand_as(diff_c).clone()), Slopes(self.s.lo, self.s.hi))
        assert out.radius is not None
        # the same product as the symmetric Jacobian M = diag(s) - s s^T with interval entries, times g
        mc, mr = jacobian_box(self.s)
        jc, jr = interval_matmul(mc.unsqueeze(1), mr.unsqueeze(1), gc.unsqueeze(-1), _col(gr))
        assert jr is not None
        lo = torch.maximum(out.center - out.radius, (jc - jr).squeeze(-1))
        hi = torch.minimum(out.center + out.radius, (jc + jr).squeeze(-1))
        hi = torch.maximum(lo, hi)
        res = Cot(((lo + hi) / 2).movedim(-1, d), ((hi - lo) / 2).movedim(-1, d))
        return (res, *((None,) * (self.n_args - 1)))

    def relax(self, inputs: list[Box | None], upper: LinearUpper | None = None) -> RowRelaxation:
        x = inputs[0]
        assert x is not None
        last = self._last(x)
        d = differences(last)
        shape = tuple(last.lo.shape[1:])
        if upper is not None and prod(shape) * shape[-1] <= REFINE_LIMIT:
            d = self.refine(d, shape, upper)
        return softmax_relaxation(last, d)

    def refine(self, d: Box, shape: tuple[int, ...], upper: LinearUpper) -> Box:
        """The box d of the differences (N, *L, n, n) intersected with linear bounds of +-d_ij."""
        spec = difference_specs(shape, d.lo).movedim(-1, self.dim)  # in the input's layout
        spec = spec.expand(d.lo.shape[0], *spec.shape)
        c = spec.shape[1]
        up = upper(0, torch.cat([spec, -spec], dim=1))
        d = d.intersect(-up[:, c:].reshape(d.lo.shape), up[:, :c].reshape(d.lo.shape))
        return Box(d.lo, torch.maximum(d.lo, d.hi))  # against rounding

    def linear_backward(
        self, lam: torch.Tensor, rel: RowRelaxation
    ) -> tuple[tuple[torch.Tensor | None, ...], torch.Tensor]:
        d = self.dim + 1
        last = lam.movedim(d, -1)
        shift = last.median(dim=-1, keepdim=True).values  # t per row, (N, C, *L, 1)
        coef, bias = rel.backward(last - shift)
        bias = bias + shift.flatten(2).sum(dim=2)
        return (coef.movedim(-1, d), *((None,) * (self.n_args - 1))), bias
