"""The losses of many steps' logits at once, for the recorder: logits of s steps over m rows stacked
class-major, zt (s, K, m), give every loss (ce, margin, dlr, zero_one) as (s, m) in one batched reduction
over the class axis (``stacked_losses``), equal to ``losses.loss_fn`` step by step, ties included.
"""

from __future__ import annotations

import math

import torch


def stacked_losses(zt: torch.Tensor, y: torch.Tensor, names: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """The losses of ``losses.loss_fn`` for logits laid out class-major, zt (s, K, m) with labels y (m,):
    {name: (s, m)}. Every reduction runs over the middle (class) axis, which is vectorised over the m
    samples (torch's CPU argmax / sort / cross_entropy over a last axis of K ~ 10 are 10-100x slower);
    classes are excluded by adding a (K, m) table of 0 / -inf (``excluded``), not by masking (s, K, m).

    zero_one = 1{argmax z != y} (first index among ties): some z_j >= z_y with j < y, or z_j > z_y with
    j > y, i.e. max_{j != y} z_j > z_y or a tie before y; ce = top + log sum exp(z - top) with top the
    largest logit; dlr's third largest logit counts ties with multiplicity (``top_and_third``).
    """
    k = zt.shape[1]
    col = torch.arange(k, device=zt.device)[:, None]
    zy = zt.gather(1, y[None, None].expand(zt.shape[0], 1, -1)).squeeze(1)  # (s, m)
    other = (zt + excluded(col == y[None])).amax(dim=1)  # max_{j != y} z_j
    first, third = top_and_third(zt) if "dlr" in names and k >= 3 else (None, None)
    if "ce" in names:
        top = zt.amax(dim=1) if first is None else first
        lse = (zt - top[:, None]).exp_().sum(dim=1).log_().add_(top)
    out: dict[str, torch.Tensor] = {}
    for name in names:
        if name == "ce":
            out[name] = lse - zy
        elif name == "margin":
            out[name] = other - zy
        elif name == "zero_one":
            before = (zt + excluded(col >= y[None])).amax(dim=1) >= zy  # a tie (or more) before y
            out[name] = ((other > zy) | before).to(zt.dtype)
        elif name == "dlr" and k >= 3:
            out[name] = -(zy - other) / (first - third + 1e-12)
    return out


def excluded(mask: torch.Tensor) -> torch.Tensor:
    """-inf where mask (K, m) holds, else 0: added to logits (s, K, m) it removes those classes from a max
    (z + 0 = z exactly; a broadcast add is ~10x faster than a broadcast masked_fill on CPU)."""
    return torch.zeros(mask.shape, device=mask.device).masked_fill_(mask, -math.inf)


#: Up to this many classes ``top_and_third`` runs an insertion over the class slices, above it topk.
INSERTION_CLASSES = 32


def top_and_third(zt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The largest and the third largest entries along axis 1 of zt (s, K, m), counted with multiplicity
    (K >= 3): two (s, m) tensors.

    For K <= INSERTION_CLASSES a running top three (a >= b >= c) takes each class slice v in turn:
    a, b, c <- max(a, v), max(b, min(a, v)), max(c, min(b, min(a, v))), five (s, m) operations per
    class (a mask over (s, K, m) or topk over the middle axis costs more on CPU); else topk."""
    if zt.shape[1] > INSERTION_CLASSES:
        values = zt.topk(3, dim=1).values
        return values[:, 0], values[:, 2]
    a, b, c = zt[:, 0], torch.full_like(zt[:, 0], -math.inf), torch.full_like(zt[:, 0], -math.inf)
    for j in range(1, zt.shape[1]):
        v = zt[:, j]
        low = torch.minimum(a, v)
        a = torch.maximum(a, v)
        low2 = torch.minimum(b, low)
        b = torch.maximum(b, low)
        c = torch.maximum(c, low2)
    return a, c
