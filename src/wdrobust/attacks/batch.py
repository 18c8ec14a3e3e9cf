"""One batch under attack: the only way an attack calls the model.

Every model evaluation goes through ``Batch.evaluate`` (forward) or ``Batch.gradient`` (forward +
backward); both count passes per sample (``Passes``) and record the evaluated points as candidates
(``Recorder``), so every iterate of every attack is a candidate point for the primal solver
(docs/notation.md#the-primal-form) at no extra model call.

Rows: an attack may evaluate any multiset of the batch's samples, given by ``rows`` (m,) indices into the
batch (a subset of still-active samples, or the batch repeated k times for k targets). The j-th occurrence
of sample i in ``rows`` becomes a new candidate column of sample i. Shapes: x0 (n, *S), y (n,), logits
(m, K), points (m, *S). Projection onto B(x0_i, r) cap [0, 1]^d uses ``safe_radius(r)``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from wdrobust.attacks.budget import Budget
from wdrobust.attacks.objectives import LogitObjective, Objective
from wdrobust.attacks.passes import Passes
from wdrobust.attacks.recorder import Recorder
from wdrobust.attacks.steps import safe_radius
from wdrobust.threat import ThreatModel


class Batch:
    """One batch under attack: clean inputs x0 (n, *S), labels y (n,), the model, the pass counter and
    the candidate recorder. ``budget``: the threat over the whole run's N samples (radius schedules)."""

    def __init__(
        self,
        model: nn.Module,
        threat: ThreatModel,
        x0: torch.Tensor,
        y: torch.Tensor,
        *,
        losses: tuple[str, ...],
        passes: Passes,
        generator: torch.Generator,
        budget: Budget,
        keep_points: bool = False,
    ) -> None:
        self.model, self.threat, self.x0, self.y = model, threat, x0, y
        self.passes, self.generator, self.budget = passes, generator, budget
        self.all = torch.arange(x0.shape[0], device=x0.device)
        with torch.no_grad():
            z0 = model(x0)
        passes.forward += x0.shape[0]
        if z0.dim() != 2:
            raise ValueError(f"the model must return logits of shape (N, K), got {tuple(z0.shape)}")
        if int(y.max()) >= z0.shape[1]:
            raise ValueError(f"label {int(y.max())} out of range for a model with {z0.shape[1]} classes")
        self.z0 = z0.detach()
        self.recorder = Recorder(x0, y, self.z0, threat.norm, losses, keep_points)
        self._bounds: dict[tuple[float, bool], tuple[torch.Tensor, torch.Tensor]] = {}
        self._bounds_rows: torch.Tensor | None = None

    @property
    def n(self) -> int:
        """Batch size n."""
        return self.x0.shape[0]

    @property
    def classes(self) -> int:
        """Number of classes K."""
        return self.z0.shape[1]

    def active(self) -> torch.Tensor:
        """The samples an attack can gain on: the whole batch (``all`` itself), or, when zero_one is the
        only recorded loss, the clean-correct ones (a clean-misclassified sample has zero_one gain <= 0 at
        every point and flip distance 0 already, so its candidates change no result). WDA uses it (its
        probe and ascent draw no random numbers, so its candidates of the other samples are unchanged)."""
        if self.recorder.losses != ("zero_one",):
            return self.all
        correct = self.recorder.clean["zero_one"] == 0
        return self.all if bool(correct.all()) else self.all[correct]

    def evaluate(self, x: torch.Tensor, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of x (m, *S) for samples rows (default: the whole batch); one counted forward, recorded."""
        rows = self.all if rows is None else rows
        with torch.no_grad():
            z = self.model(x)
        self.passes.forward += x.shape[0]
        self.recorder.add(x, z, rows, full=rows is self.all)
        return z

    def gradient(
        self,
        x: torch.Tensor,
        objective: Objective,
        rows: torch.Tensor | None = None,
        values: bool = True,
        record: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """(z, v, g): logits, objective values v = objective(z, rows) (m,) (None unless ``values``) and
        g = grad_x v_i (m, *S).

        One counted forward and backward over the m rows; x is recorded as a candidate of the samples
        rows unless ``record`` is False (points that belong to no sample, e.g. the whole-box search). A
        ``LogitObjective`` back-propagates its closed-form logit gradient (no graph through the loss).
        """
        rows = self.all if rows is None else rows
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            z = self.model(x)
            if isinstance(objective, LogitObjective):
                zd = z.detach()
                (g,) = torch.autograd.grad(z, x, grad_outputs=objective.logit_grad(zd, rows))
                v = objective.value(zd, rows) if values else None
            else:
                out = objective(z, rows)
                (g,) = torch.autograd.grad(out.sum(), x)
                zd, v = z.detach(), out.detach()
        self.passes.forward += x.shape[0]
        self.passes.backward += x.shape[0]
        if record:
            self.recorder.add(x, zd, rows, full=rows is self.all)
        return zd, v, g

    def offer(self, x: torch.Tensor, z: torch.Tensor, rows: torch.Tensor) -> None:
        """Record points x (m, *S) whose logits z (m, K) are already known (no model call) as candidates of
        the samples rows (m,)."""
        self.recorder.add(x, z, rows)

    def project(
        self, x: torch.Tensor, rows: torch.Tensor, radius: torch.Tensor | float, inplace: bool = False
    ) -> torch.Tensor:
        """Projection of x (m, *S) onto B(x0_rows, radius) and the box, radius shrunk by ``safe_radius``.

        For linf with a float radius, one clamp between the cached bounds max(x0_rows - r, 0) and
        min(x0_rows + r, 1) (the same set), written into x itself when ``inplace`` (for a fresh x that
        nothing else holds: it saves allocating and first touching a new (m, *S) tensor).
        """
        if self.threat.norm == "linf" and isinstance(radius, float):
            low, high = self.linf_bounds(rows, radius)
            return torch.clamp(x, min=low, max=high, out=x if inplace else None)
        r = torch.as_tensor(radius, dtype=x.dtype, device=x.device).expand(x.shape[0])
        return self.threat.project(x, self.x0[rows], safe_radius(r))

    def linf_bounds(self, rows: torch.Tensor, radius: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(max(x0_rows - r, 0), min(x0_rows + r, 1)), each (m, *S), with r = safe_radius(radius); cached
        per radius for the whole batch, and for the last other ``rows`` tensor seen (by identity), whose
        bounds are gathered from the whole batch's (no second pass over x0)."""
        key = (radius, rows is self.all)
        if key in self._bounds and (rows is self.all or self._bounds_rows is rows):
            return self._bounds[key]
        if (radius, True) not in self._bounds:
            r = max(radius * (1.0 - 1e-5) - 1e-7, 0.0)  # safe_radius, in float64 arithmetic
            self._bounds[radius, True] = ((self.x0 - r).clamp_(min=0.0), (self.x0 + r).clamp_(max=1.0))
        if rows is not self.all:
            self._bounds = {k: v for k, v in self._bounds.items() if k[1]}
            self._bounds_rows = rows
            low, high = self._bounds[radius, True]
            self._bounds[key] = (low[rows], high[rows])
        return self._bounds[key]

    def random_start(self, rows: torch.Tensor, radius: torch.Tensor | float) -> torch.Tensor:
        """A random point of B(x0_rows, radius) cap box: uniform in the linf cube of the radius, projected."""
        x0 = self.x0[rows]
        r = torch.as_tensor(radius, dtype=x0.dtype, device=x0.device).expand(x0.shape[0])
        u = torch.rand(x0.shape, generator=self.generator, device=x0.device, dtype=x0.dtype)
        delta = (2 * u - 1) * r.reshape(-1, *([1] * (x0.dim() - 1)))
        return self.project(x0 + delta, rows, r, inplace=True)

    def top_targets(self, k: int) -> torch.Tensor:
        """The k non-true classes with the largest clean logits, (n, k), best first."""
        masked = self.z0.scatter(1, self.y[:, None], -math.inf)
        return masked.topk(k, dim=1).indices
