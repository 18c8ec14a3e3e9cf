"""Bound rule of the product of two interval matrices: Z = A @ B (q k^T and attention x values).

Shapes: A (N, *L, i, j), B (N, *L, j, k) with the same leading axes (N the batch), Z (N, *L, i, k).
In midpoint-radius form A = CA +- RA, B = CB +- RB (``Box.center``, ``Box.radius``):

- box (Rump's enclosure): Z in CA CB +- (|CA| RB + RA |CB| + RA RB);
- interval Jacobian: for a cotangent G of Z, dZ = dA B + A dB gives G_A = G B^T and G_B = A^T G, each an
  interval matrix product of the same form (point cotangents: RG = 0);
- linear relaxation (McCormick): for every product a b with a in ca +- ra, b in cb +- rb and parameters
  su, sl in [-1, 1] (the interpolation between the two McCormick planes of each side, weight (1 + s)/2 on
  the first),

      a b <= (cb + su rb) a + (ca - su ra) b - ca cb + ra rb - su (ca rb - ra cb)  (1: ub a + la b - la ub)
      a b >= (cb - sl rb) a + (ca - sl ra) b - ca cb - ra rb + sl (ca rb + ra cb)  (1: lb a + la b - la lb)

  convex combinations of sound planes, so every su, sl is sound. At a = ca + da, b = cb + db the upper
  plane is ca cb + ra rb + (cb + su rb) da + (ca - su ra) db, so over the operands' boxes its largest value
  ca cb + ra rb + ra |cb + su rb| + rb |ca - su ra| is smallest for su between -cb/rb and ca/ra, and the
  lower plane's smallest value is largest for sl between cb/rb and ca/ra: the default (``plane_choice``) is
  the point of that range nearest to 0 (0 is the linearisation at the centre), clipped to [-1, 1].
  For lam (B, C, *L, i, k) over Z, the upper plane where lam_ik > 0 and the lower one where lam_ik < 0,
  with u = lam+ su - lam- sl and v = lam+ su + lam- sl per term (i, j, k):

      lam . Z <= (lam CB^T + sum_k u rb) . A + (CA^T lam - sum_i v ra) . B - lam . (CA CB) + |lam| . (RA RB)
                 - sum_ijk (u_ijk ca_ij rb_jk - v_ijk ra_ij cb_jk).

  alpha-CROWN optimises su, sl per specification row and term (``params``, from the default).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

import torch

from wdrobust.certify.bounds.interval import Box, Cot
from wdrobust.certify.bounds.rule import LinearUpper, Rule, register, unsupported


def interval_matmul(
    ac: torch.Tensor, ar: torch.Tensor | None, bc: torch.Tensor, br: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(centre, radius) enclosing {a @ b : a in ac +- ar, b in bc +- br} (radius None: a point); torch
    matmul broadcasting."""
    center = ac @ bc
    parts = []
    if br is not None:
        parts.append(ac.abs() @ br)
    if ar is not None:
        parts.append(ar @ bc.abs())
        if br is not None:
            parts.append(ar @ br)
    return center, (sum(parts[1:], parts[0]) if parts else None)


@dataclass
class BilinearRelaxation:
    """Centres and radii of both operands (batch first), the products CA CB and RA RB, and the
    interpolations (su, sl) (N, *L, i, j, k, 2) of the planes (``plane_choice``)."""

    ca: torch.Tensor
    cb: torch.Tensor
    ra: torch.Tensor
    rb: torch.Tensor
    cacb: torch.Tensor
    rarb: torch.Tensor
    planes: torch.Tensor


def plane_choice(ca: torch.Tensor, cb: torch.Tensor, ra: torch.Tensor, rb: torch.Tensor) -> torch.Tensor:
    """(su, sl) (*S, 2) for products a b with a in ca +- ra, b in cb +- rb (broadcast to *S): the
    interpolations of the McCormick planes that minimise the upper plane's largest value and maximise the
    lower plane's smallest value over the boxes, nearest to 0 (su between -cb/rb and ca/ra, sl between
    cb/rb and ca/ra, clipped to [-1, 1]; 0 where a radius is 0); see the module docstring."""
    wide = (ra > 0) & (rb > 0)
    x = ca / torch.where(ra > 0, ra, 1.0)
    y = cb / torch.where(rb > 0, rb, 1.0)

    def nearest_zero(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        low, high = torch.minimum(p, q), torch.maximum(p, q)
        return torch.where(wide, torch.clamp(torch.clamp(torch.zeros_like(low), low, high), -1.0, 1.0), 0.0)

    return torch.stack([nearest_zero(-y, x), nearest_zero(y, x)], dim=-1)


@register(operator.matmul, torch.matmul, torch.bmm, "matmul", "bmm")
class MatMulRule(Rule):
    """A @ B for two interval operands of equal leading shape; see the module docstring. (A product
    with a constant matrix is an affine layer: use nn.Linear / F.linear.)"""

    nonlinear = True
    relaxed = True
    compounding = True

    def forward(self, a: Any, b: Any) -> Box:  # type: ignore[override]
        if not (isinstance(a, Box) and isinstance(b, Box)):
            raise unsupported("matmul", self.name, "one operand is constant (use nn.Linear or F.linear)")
        if a.lo.dim() < 3 or a.lo.shape[:-2] != b.lo.shape[:-2]:
            raise unsupported("matmul", self.name, "operands need equal leading axes and two matrix axes")
        self.a, self.b = a, b
        center, radius = interval_matmul(a.center, a.radius, b.center, b.radius)
        assert radius is not None
        flat = (a.radius.flatten(1).amax(dim=1) == 0) & (b.radius.flatten(1).amax(dim=1) == 0)
        self.stable = flat
        return Box.from_center(center, radius)

    def backward(self, cot: Cot) -> tuple[Cot | None, ...]:
        ac, ar = self.a.center.unsqueeze(1), self.a.radius.unsqueeze(1)
        bc, br = self.b.center.unsqueeze(1), self.b.radius.unsqueeze(1)
        gt = cot.center
        rt = cot.radius
        ga = interval_matmul(gt, rt, bc.transpose(-2, -1), br.transpose(-2, -1))
        gb = interval_matmul(ac.transpose(-2, -1), ar.transpose(-2, -1), gt, rt)
        return Cot(*ga), Cot(*gb)

    def relax(self, inputs: list[Box | None], upper: LinearUpper | None = None) -> BilinearRelaxation:
        a, b = inputs
        assert a is not None and b is not None
        ca, cb, ra, rb = a.center, b.center, a.radius, b.radius
        planes = plane_choice(ca.unsqueeze(-1), cb.unsqueeze(-3), ra.unsqueeze(-1), rb.unsqueeze(-3))
        return BilinearRelaxation(ca, cb, ra, rb, ca @ cb, ra @ rb, planes)

    def params(self, rel: BilinearRelaxation, specs: int) -> tuple[torch.Tensor, float, float]:
        """The interpolations (su, sl) (B, specs, *L, i, j, k, 2) of the McCormick planes, from the default,
        each in [-1, 1]."""
        init = rel.planes.unsqueeze(1)
        return init.expand(init.shape[0], specs, *init.shape[2:]), -1.0, 1.0

    def linear_backward(
        self, lam: torch.Tensor, rel: BilinearRelaxation, param: torch.Tensor | None = None
    ) -> tuple[tuple[torch.Tensor | None, ...], torch.Tensor]:
        """See the module docstring; param: (su, sl) per specification (B, C, *L, i, j, k, 2), default the
        relaxation's (B, *L, i, j, k, 2), for all specifications. The sums over the terms are
        contractions (einsum), never a tensor of every term for every specification."""
        spec = "c" if param is not None else ""
        planes = rel.planes if param is None else param
        ca, cb, ra, rb = (t if param is None else t.unsqueeze(1) for t in (rel.ca, rel.cb, rel.ra, rel.rb))
        su, sl = planes[..., 0], planes[..., 1]
        ca_, ra_, cb_, rb_ = ca.unsqueeze(-1), ra.unsqueeze(-1), cb.unsqueeze(-3), rb.unsqueeze(-3)
        tu = (su * (ca_ * rb_ - ra_ * cb_)).sum(dim=-2)  # sum_j su_ijk (ca_ij rb_jk - ra_ij cb_jk)
        tl = (sl * (ca_ * rb_ + ra_ * cb_)).sum(dim=-2)
        pos, neg = lam.clamp(min=0), lam.clamp(max=0)

        def over_k(g: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return torch.einsum(f"bc...ik,b{spec}...ijk->bc...ij", g, t)

        def over_i(g: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return torch.einsum(f"bc...ik,b{spec}...ijk->bc...jk", g, t)

        coef_a = torch.einsum(f"bc...ik,b{spec}...jk->bc...ij", lam, cb)
        coef_a = coef_a + over_k(pos, su * rb_) - over_k(neg, sl * rb_)
        coef_b = torch.einsum(f"bc...ik,b{spec}...ij->bc...jk", lam, ca)
        coef_b = coef_b - over_i(pos, su * ra_) - over_i(neg, sl * ra_)
        if param is None:
            tu, tl = tu.unsqueeze(1), tl.unsqueeze(1)
        terms = lam.abs() * rel.rarb.unsqueeze(1) - lam * rel.cacb.unsqueeze(1) - pos * tu + neg * tl
        return (coef_a, coef_b), terms.flatten(2).sum(dim=2)
