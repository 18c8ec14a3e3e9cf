"""Threat models: input norms, their duals, projections and steepest-ascent directions.

Notation (docs/notation.md#the-classifier-and-the-threat): inputs live in X = [0, 1]^d; a batch has shape
(N, *S) with d = prod(S).
Every function below treats dimension 0 as the sample axis and reduces over all the others.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from wdrobust._options import parse_number

NORMS = ("linf", "l2", "l1")
DUAL = {"linf": "l1", "l2": "l2", "l1": "linf"}


def _check_norm(norm: str) -> str:
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}: expected one of {', '.join(NORMS)}")
    return norm


def lp_norm(v: torch.Tensor, norm: str, batch_dims: int = 1) -> torch.Tensor:
    """Per-sample norm ||v_i|| of a batch v of shape (*B, *S) with len(B) = batch_dims (default: (N, *S));
    returns shape B, e.g. (N, K) for per-class gradients of shape (N, K, *S) with batch_dims=2."""
    flat = v.reshape(*v.shape[:batch_dims], -1)
    norm = _check_norm(norm)
    if norm == "linf":
        return flat.abs().amax(dim=-1) if flat.shape[-1] else flat.new_zeros(flat.shape[:-1])
    if norm == "l2":
        return flat.norm(p=2, dim=-1)
    return flat.abs().sum(dim=-1)


def dual_of(norm: str) -> str:
    """Name of the dual norm: linf <-> l1, l2 <-> l2."""
    return DUAL[_check_norm(norm)]


def steepest(g: torch.Tensor, norm: str) -> torch.Tensor:
    """Dual-norm maximiser u* = argmax_{||u|| <= 1} <g, u>, per sample; shape (N, *S) -> (N, *S).

    linf: sign(g); l2: g / ||g||_2 (0 where g = 0); l1: sign(g_k) e_k at k = argmax |g_k|.
    In every case <g, u*> = ||g||_* .
    """
    norm = _check_norm(norm)
    if norm == "linf":
        return torch.sign(g)
    flat = g.reshape(g.shape[0], -1)
    if norm == "l2":
        n = flat.norm(dim=1, keepdim=True)
        return (flat / torch.where(n > 0, n, torch.ones_like(n))).reshape(g.shape)
    idx = flat.abs().argmax(dim=1, keepdim=True)
    out = torch.zeros_like(flat)
    out.scatter_(1, idx, torch.sign(flat.gather(1, idx)))
    return out.reshape(g.shape)


def _project_l1_ball(v: torch.Tensor, radius: torch.Tensor) -> torch.Tensor:
    """Euclidean projection of rows of v (N, d) onto {||u||_1 <= r_i} by the sorting algorithm.

    u = sign(v) max(|v| - theta, 0) with theta the threshold from the sorted magnitudes
    (Duchi et al. 2008); rows already inside the ball are returned unchanged.
    """
    a = v.abs()
    inside = a.sum(dim=1) <= radius
    mu, _ = torch.sort(a, dim=1, descending=True)
    cums = mu.cumsum(dim=1) - radius[:, None]
    ks = torch.arange(1, v.shape[1] + 1, device=v.device, dtype=v.dtype)
    cond = mu - cums / ks > 0
    rho = (cond * ks).amax(dim=1).clamp(min=1).long()
    theta = cums.gather(1, (rho - 1)[:, None]).squeeze(1) / rho.to(v.dtype)
    theta = torch.where(inside, torch.zeros_like(theta), theta.clamp(min=0))
    return torch.sign(v) * (a - theta[:, None]).clamp(min=0)


def project_ball(delta: torch.Tensor, radius: torch.Tensor | float, norm: str) -> torch.Tensor:
    """Euclidean projection of each delta_i (N, *S) onto the norm ball {||u|| <= radius_i}.

    radius: a float or a tensor of shape (N,). linf: clamp; l2: radial scaling (exact for l2);
    l1: the sorting algorithm (exact), not radial scaling.
    """
    norm = _check_norm(norm)
    n = delta.shape[0]
    r = torch.as_tensor(radius, dtype=delta.dtype, device=delta.device).expand(n).clone()
    flat = delta.reshape(n, -1)
    if norm == "linf":
        out = torch.maximum(torch.minimum(flat, r[:, None]), -r[:, None])
    elif norm == "l2":
        nrm = flat.norm(dim=1)
        scale = torch.where(nrm > r, r / nrm.clamp(min=1e-30), torch.ones_like(nrm))
        out = flat * scale[:, None]
    else:
        out = _project_l1_ball(flat, r)
    return out.reshape(delta.shape)


@dataclass(frozen=True)
class ThreatModel:
    """A Wasserstein threat: input norm ||.||, radius eps >= 0 and order p in [1, inf].

    The transport cost is c((x, y), (x', y')) = ||x - x'|| if y = y' else +inf, and the ball is
    {Q : W_p(Q, P_N) <= eps}. eps and p accept numbers or strings ("8/255", "inf").
    """

    norm: str = "linf"
    eps: float = 0.0
    p: float = math.inf

    def __post_init__(self) -> None:
        _check_norm(self.norm)
        eps = parse_number(self.eps, "eps")
        p = parse_number(self.p, "p")
        if not math.isfinite(eps) or eps > torch.finfo(torch.float32).max:
            raise ValueError(f"eps must be finite (and fit a float32), got {self.eps!r}")
        if eps < 0:
            raise ValueError(f"eps must be >= 0, got {self.eps!r}")
        if p < 1:
            raise ValueError(f"p must be >= 1 (or inf), got {self.p!r}")
        try:
            eps**p  # the budget eps^p of finite p must be a float
        except OverflowError:
            raise ValueError(f"eps ** p overflows a float for eps = {self.eps!r}, p = {self.p!r}") from None
        object.__setattr__(self, "eps", eps)
        object.__setattr__(self, "p", p)

    @property
    def dual(self) -> str:
        """The dual norm's name."""
        return dual_of(self.norm)

    @property
    def q(self) -> float:
        """Hoelder conjugate of p: 1/p + 1/q = 1 (p = 1 -> inf, p = inf -> 1)."""
        if self.p == 1:
            return math.inf
        if math.isinf(self.p):
            return 1.0
        return self.p / (self.p - 1)

    def norm_of(self, v: torch.Tensor) -> torch.Tensor:
        """||v_i|| per sample, shape (N, *S) -> (N,)."""
        return lp_norm(v, self.norm)

    def dual_norm(self, g: torch.Tensor) -> torch.Tensor:
        """||g_i||_* per sample, shape (N, *S) -> (N,)."""
        return lp_norm(g, self.dual)

    def steepest_direction(self, g: torch.Tensor) -> torch.Tensor:
        """argmax_{||u|| <= 1} <g_i, u> per sample, shape (N, *S) -> (N, *S)."""
        return steepest(g, self.norm)

    def project(self, x: torch.Tensor, x0: torch.Tensor, radius: torch.Tensor | float) -> torch.Tensor:
        """x0 + P_ball(x - x0) clipped to the box [0, 1]; radius a float or shape (N,).

        For linf the result is the exact projection onto the intersection; for l2/l1 it is the ball
        projection followed by the box clip, which keeps the point inside both sets because clipping
        towards x0 in [0,1]^d never increases ||x - x0||.
        """
        return (x0 + project_ball(x - x0, radius, self.norm)).clamp(0.0, 1.0)

    def diameter(self, d: int) -> float:
        """Diameter of [0,1]^d in the threat norm: 1 (linf), sqrt(d) (l2), d (l1)."""
        return {"linf": 1.0, "l2": math.sqrt(d), "l1": float(d)}[self.norm]

    def check_radius(self, d: int) -> None:
        """ValueError when eps exceeds ``diameter(d)``: no input can move further, so such a radius is a
        slip of scale (``8`` meant as ``8/255``), refused with that hint."""
        diameter = self.diameter(d)
        if self.eps > diameter * (1 + 1e-12):
            raise ValueError(
                f"eps = {self.eps:g} exceeds {diameter:.4g}, the {self.norm} diameter of the input box "
                f"[0, 1]^{d}: did you mean {self.eps:g}/255?"
            )

    def with_eps(self, eps: float) -> ThreatModel:
        """Same norm and p, another radius."""
        return ThreatModel(self.norm, eps, self.p)

    def __str__(self) -> str:
        p = "inf" if math.isinf(self.p) else f"{self.p:g}"
        return f"{self.norm}, eps={self.eps:g}, p={p}"
