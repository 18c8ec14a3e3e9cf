"""Bound rule of the product of two interval matrices: Z = A @ B (q k^T and attention x values).

Shapes: A (N, *L, i, j), B (N, *L, j, k) with the same leading axes (N the batch), Z (N, *L, i, k).
In midpoint-radius form A = CA +- RA, B = CB +- RB (``Box.center``, ``Box.radius``):

- box (Rump's enclosure): Z in CA CB +- (|CA| RB + RA |CB| + RA RB);
- interval Jacobian: for a cotangent G of Z, dZ = dA B + A dB gives G_A = G B^T and G_B = A^T G, each an
  interval matrix product of the same form (point cotangents: RG = 0);
- linear relaxation (McCormick): for every product a b with a in ca +- ra, b in cb +- rb and a parameter
  s in [-1, 1] (the interpolation between the two McCormick planes of each side, (1 + s)/2 on the first),

      a b <= (cb + s rb) a + (ca - s ra) b - ca cb + ra rb - s (ca rb - ra cb)   (s = 1: ub a + la b - la ub)
      a b >= (cb - s rb) a + (ca - s ra) b - ca cb - ra rb + s (ca rb + ra cb)   (s = 1: lb a + la b - la lb)

  both convex combinations of sound planes, so every s is sound. s = 0 is the linearisation at the centre,
  A CB + CA B - CA CB -+ RA RB elementwise, and then
  lam . Z <= (lam CB^T) . A + (CA^T lam) . B - lam . (CA CB) + |lam| . (RA RB).
  With s (B, C, *L, i, j, k) per specification row and product term a_ij b_jk (``params``, optimised by
  alpha-CROWN; the upper plane where lam_ik > 0, the lower one where lam_ik < 0), this adds
  sum_k |lam_ik| s_ijk rb_jk to the coefficient of a_ij, -sum_i lam_ik s_ijk ra_ij to that of b_jk and
  -sum_ijk s_ijk (|lam_ik| ca_ij rb_jk - lam_ik ra_ij cb_jk) to the bias.
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
    """Centres and radii of both operands (batch first) and the products CA CB and RA RB."""

    ca: torch.Tensor
    cb: torch.Tensor
    ra: torch.Tensor
    rb: torch.Tensor
    cacb: torch.Tensor
    rarb: torch.Tensor


def _dot(lam: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """sum over the value axes of lam (N, C, *S) times t (N, *S) -> (N, C)."""
    return (lam * t.unsqueeze(1)).flatten(2).sum(dim=2)


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
        return BilinearRelaxation(ca, cb, ra, rb, ca @ cb, ra @ rb)

    def params(self, rel: BilinearRelaxation, specs: int) -> tuple[torch.Tensor, float, float]:
        """The interpolations s (B, specs, *L, i, j, k) of the McCormick planes, from 0 (the centre
        linearisation), each in [-1, 1]."""
        shape = (rel.ca.shape[0], specs, *rel.ca.shape[1:], rel.cb.shape[-1])
        return rel.ca.new_zeros(shape), -1.0, 1.0

    def linear_backward(
        self, lam: torch.Tensor, rel: BilinearRelaxation, param: torch.Tensor | None = None
    ) -> tuple[tuple[torch.Tensor | None, ...], torch.Tensor]:
        ca, cb = rel.ca.unsqueeze(1), rel.cb.unsqueeze(1)
        coef_a = lam @ cb.transpose(-2, -1)
        coef_b = ca.transpose(-2, -1) @ lam
        mag = lam.abs()
        bias = _dot(mag, rel.rarb) - _dot(lam, rel.cacb)
        if param is None:
            return (coef_a, coef_b), bias
        ra, rb = rel.ra.unsqueeze(1), rel.rb.unsqueeze(1)
        mag_s = mag.unsqueeze(-2) * param  # |lam_ik| s_ijk, (B, C, *L, i, j, k)
        lam_s = lam.unsqueeze(-2) * param
        coef_a = coef_a + (mag_s * rb.unsqueeze(-3)).sum(dim=-1)
        coef_b = coef_b - (lam_s * ra.unsqueeze(-1)).sum(dim=-3)
        terms = mag_s * (ca.unsqueeze(-1) * rb.unsqueeze(-3)) - lam_s * (ra.unsqueeze(-1) * cb.unsqueeze(-3))
        return (coef_a, coef_b), bias - terms.flatten(2).sum(dim=2)
