"""Objectives an attack ascends: functions of the logits z (m, K) of the evaluated rows (m,).

An ``Objective`` is any callable objective(z, rows) -> (m,) (autograd differentiates it through the
model). A ``LogitObjective`` also knows its gradient in the logits in closed form, so ``Batch.gradient``
back-propagates that (m, K) tensor from the logits, with no autograd graph through the loss:

    CE          v = logsumexp(z) - z_y          dv/dz = softmax(z) - e_y       (``CrossEntropy``)
    linear      v = <w_r, z>                    dv/dz = w_r                     (``LinearObjective``)
    margin      m_t = z_t - z_y                 w = e_t - e_y                   (``margin_weights``)

``rows`` index the batch: the objective of row r uses the label (or weights) of batch sample rows[r].
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from wdrobust.losses import loss_fn

#: objective(z (m, K), rows (m,)) -> (m,) values to ascend.
Objective = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class LogitObjective:
    """An objective whose gradient in the logits is known in closed form: ``value(z, rows)`` (m,) and
    ``logit_grad(z, rows)`` = d value / d z (m, K). ``Batch.gradient`` back-propagates that (m, K) tensor
    from the logits (one backward, no autograd graph through the loss). Per-rows tensors are cached for
    the last rows tensor seen (by identity), as an attack evaluates the same rows at every step."""

    def __init__(self) -> None:
        self._cache: tuple[torch.Tensor | None, torch.Tensor] = (None, torch.empty(0))

    def rows_tensor(self, rows: torch.Tensor) -> torch.Tensor:
        """The per-rows tensor of ``rows`` (built by ``build``), cached by identity."""
        if self._cache[0] is not rows:
            self._cache = (rows, self.build(rows))
        return self._cache[1]

    def build(self, rows: torch.Tensor) -> torch.Tensor:
        """The per-rows tensor the objective needs (weights or one-hot labels), (m, K)."""
        raise NotImplementedError

    def __call__(self, z: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return self.value(z, rows)

    def value(self, z: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Objective values (m,) of logits z (m, K) of samples rows (m,)."""
        raise NotImplementedError

    def logit_grad(self, z: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """d value / d z, (m, K)."""
        raise NotImplementedError


class LinearObjective(LogitObjective):
    """v = <w_r, z> with weights w (n, K) per batch sample (rows index them), or, with ``positional``, one
    weight row per evaluated row (rows must then have w's length: e.g. the batch repeated k times)."""

    def __init__(self, weights: torch.Tensor, positional: bool = False) -> None:
        super().__init__()
        self.weights, self.positional = weights, positional

    def build(self, rows: torch.Tensor) -> torch.Tensor:
        if self.positional:
            if rows.shape[0] != self.weights.shape[0]:
                raise ValueError(f"{rows.shape[0]} rows for {self.weights.shape[0]} positional weights")
            return self.weights
        return self.weights[rows]

    def value(self, z: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return (z * self.rows_tensor(rows)).sum(dim=1)

    def logit_grad(self, z: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return self.rows_tensor(rows)


class CrossEntropy(LogitObjective):
    """CE(z, y_r) = logsumexp(z) - z_y, whose logit gradient is softmax(z) - e_y."""

    def __init__(self, y: torch.Tensor, classes: int) -> None:
        super().__init__()
        self.y, self.classes = y, classes

    def build(self, rows: torch.Tensor) -> torch.Tensor:
        return one_hot(self.y[rows], self.classes)

    def value(self, z: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return loss_fn("ce", z, self.y[rows])

    def logit_grad(self, z: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return torch.softmax(z, dim=1).sub_(self.rows_tensor(rows))


def one_hot(labels: torch.Tensor, classes: int) -> torch.Tensor:
    """e_labels (m, K) float32 by one scatter (torch's one_hot validates its input with host syncs)."""
    out = torch.zeros(labels.shape[0], classes, device=labels.device)
    return out.scatter_(1, labels[:, None], 1.0)


def margin_weights(y: torch.Tensor, target: torch.Tensor, classes: int) -> torch.Tensor:
    """Weights e_t - e_y (m, K) of the margins m_t = z_t - z_y, for targets t (m,) and labels y (m,)
    (0 where t = y)."""
    weights = one_hot(target, classes)
    return weights.scatter_add_(1, y[:, None], weights.new_full((y.shape[0], 1), -1.0))


def loss_objective(name: str, y: torch.Tensor, classes: int) -> Objective:
    """Objective l(z, y_rows) for a loss name (ce, margin, dlr); ce with its closed-form logit gradient."""
    if name == "ce":
        return CrossEntropy(y, classes)
    return lambda z, rows: loss_fn(name, z, y[rows])


def target_margin(y: torch.Tensor, target: torch.Tensor, classes: int) -> LinearObjective:
    """Objective m_t(x) = z_t - z_y with a target class t_i per batch sample (target shape (n,))."""
    return LinearObjective(margin_weights(y, target, classes))
