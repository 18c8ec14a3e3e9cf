"""Input gradients of the class margins m_j(x) = z_j(x) - z_y(x).

g_ij = grad_x m_j(x_i) = J(x_i)^T (e_j - e_y): one forward pass and one backward pass per class j,
batched over the samples (docs/notation.md#the-classifier-and-the-threat). Backward passes beat
vmap(jacrev) on CPU here.
"""

from __future__ import annotations

import torch
from torch import nn


def margin_gradients(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, classes: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Margins and their input gradients.

    x: (N, *S) inputs, y: (N,) labels. classes: optional (N, C) class indices per sample; default all K.
    Returns (m, g) with m: (N, C) margins m_j(x_i) and g: (N, C, *S) gradients of m_j at x_i.
    The entry j = y_i has m = 0 and g = 0. Uses one forward and C backward passes.
    """
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        z = model(x)
        k = z.shape[1]
        if classes is None:
            classes = torch.arange(k, device=x.device).expand(x.shape[0], k)
        m = z.gather(1, classes) - z.gather(1, y[:, None])
        grads = []
        for c in range(classes.shape[1]):
            (gc,) = torch.autograd.grad(m[:, c].sum(), x, retain_graph=c + 1 < classes.shape[1])
            grads.append(gc)
    return m.detach(), torch.stack(grads, dim=1)
