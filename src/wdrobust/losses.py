"""Losses l(x, y) = lambda(f(x), y) evaluated from logits, and their Lipschitz facts.

Logits z have shape (N, K); labels y shape (N,) int64. Every loss returns shape (N,).

- ``ce``:       -log softmax(z)_y = log(1 + sum_{j != y} exp(m_j))
- ``margin``:   max_{j != y} m_j, with m_j = z_j - z_y (> 0 iff misclassified, up to ties)
- ``dlr``:      -(z_y - max_{j != y} z_j) / (z_(1) - z_(3) + 1e-12) (AutoAttack's DLR; K >= 3)
- ``zero_one``: 1{argmax z != y}
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from wdrobust.threat import dual_of

LOSSES = ("ce", "margin", "dlr", "zero_one")
#: Losses the certificates bound (dlr is an attack objective only).
CERTIFIABLE = ("ce", "margin", "zero_one")


def check_loss(name: str) -> str:
    """Return name if it is a known loss, else raise ValueError naming the choices."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}: expected one of {', '.join(LOSSES)}")
    return name


def check_certifiable(name: str) -> str:
    """Return name if it is in ``CERTIFIABLE``, else raise ValueError naming the choices."""
    if check_loss(name) not in CERTIFIABLE:
        raise ValueError(f"loss {name!r} cannot be certified: expected one of {', '.join(CERTIFIABLE)}")
    return name


def margins(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """All margins m_j = z_j - z_y, shape (N, K); the entry j = y is 0."""
    return z - z.gather(1, y[:, None])


def max_other(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """max_{j != y} z_j, shape (N,)."""
    masked = z.masked_fill(F.one_hot(y, z.shape[1]).bool(), -math.inf)
    return masked.amax(dim=1)


def loss_fn(name: str, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-sample loss l(z, y), shape (N, K), (N,) -> (N,)."""
    check_loss(name)
    if name == "ce":
        return F.cross_entropy(z, y, reduction="none")
    if name == "margin":
        return max_other(z, y) - z.gather(1, y[:, None]).squeeze(1)
    if name == "zero_one":
        return (z.argmax(dim=1) != y).to(z.dtype)
    if z.shape[1] < 3:
        raise ValueError(f"dlr loss needs at least 3 classes, the model has {z.shape[1]}")
    top = z.sort(dim=1, descending=True).values
    zy = z.gather(1, y[:, None]).squeeze(1)
    return -(zy - max_other(z, y)) / (top[:, 0] - top[:, 2] + 1e-12)


def all_losses(z: torch.Tensor, y: torch.Tensor, names: tuple[str, ...] = LOSSES) -> dict[str, torch.Tensor]:
    """Every named loss of the same logits, {name: (N,)}; dlr is skipped when K < 3."""
    return {n: loss_fn(n, z, y) for n in names if not (n == "dlr" and z.shape[1] < 3)}


def loss_cap(name: str) -> float:
    """Supremum of the loss over all logits: 1 for zero_one, +inf for the others."""
    return 1.0 if check_loss(name) == "zero_one" else math.inf


def logit_lipschitz(name: str, logit_norm: str) -> float:
    """Lipschitz constant of z -> l(z, y) for the norm ``logit_norm`` on logits.

    It is sup_z ||grad_z l||_* with the dual norm of ``logit_norm``. For ce, grad = softmax(z) - e_y, whose
    l1 norm is 2(1 - p_y) < 2, l2 norm < sqrt(2) and linf norm < 1; margin has grad e_j - e_y (same values,
    attained). zero_one and dlr are not Lipschitz in z.
    """
    check_loss(name)
    if name in ("zero_one", "dlr"):
        return math.inf
    return {"l1": 2.0, "l2": math.sqrt(2.0), "linf": 1.0}[dual_of(logit_norm)]


def lipschitz_from_margins(name: str, margin_lip: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Input-Lipschitz bound of the loss from per-class margin constants L_ij, shape (N, K) -> (N,).

    grad ce = sum_{j != y} p_j grad m_j with sum p_j <= 1, and margin = max_j m_j, so for both
    Lip(l) <= max_{j != y} L_ij. The entry j = y is ignored. zero_one and dlr: +inf.
    """
    check_loss(name)
    if name in ("zero_one", "dlr"):
        return torch.full(margin_lip.shape[:1], math.inf, dtype=margin_lip.dtype, device=margin_lip.device)
    return max_other(margin_lip, y)
