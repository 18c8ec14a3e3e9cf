"""The attack result type shared by every attack, and the base class that runs an attack in batches.

An attack yields, per sample i, candidate points x_ik with distances t_ik = ||x_ik - x_i|| and gains
g_ik = l(x_ik, y_i) - l(x_i, y_i) for each recorded loss (docs/notation.md#the-primal-form); the primal
solver turns them into an explicit adversarial distribution.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from wdrobust._device import resolve_device
from wdrobust._options import Option, one_of, option_table, resolve
from wdrobust.attacks.batch import Batch
from wdrobust.attacks.budget import Budget
from wdrobust.attacks.passes import Passes
from wdrobust.losses import LOSSES, check_loss
from wdrobust.primal.curves import AttainedPoints, pad_columns
from wdrobust.primal.flips import closest_flips
from wdrobust.threat import NORMS, ThreatModel

#: The check of an option naming the loss an attack ascends (zero_one has no gradient).
DIFFERENTIABLE = one_of("ce", "margin", "dlr", text="a differentiable loss: ce, margin or dlr")


@dataclass
class AttackResult:
    """Candidate points of an attack over N samples (shapes in docs/architecture.md).

    t: (N, M) distances (inf = padding); gains: {loss: (N, M)} loss at the candidate minus clean loss;
    clean_loss: {loss: (N,)}; clean_correct: (N,) bool; flip_distance: (N,) distance of the closest
    misclassified candidate (0 if clean-misclassified, inf if none); points: (N, M, *S) or None;
    forward_passes / backward_passes: totals of per-sample passes; seconds: wall time.
    """

    attack: str
    threat: ThreatModel
    t: np.ndarray
    gains: dict[str, np.ndarray]
    clean_loss: dict[str, np.ndarray]
    clean_correct: np.ndarray
    flip_distance: np.ndarray | None = None
    points: torch.Tensor | None = None
    forward_passes: int = 0
    backward_passes: int = 0
    seconds: float = 0.0

    @property
    def n(self) -> int:
        """Number of samples N."""
        return self.t.shape[0]

    def attained(self, loss: str) -> AttainedPoints:
        """The attained points (t, gains[loss]) of one loss, for ``primal.lower_bound``."""
        if loss not in self.gains:
            raise ValueError(f"loss {loss!r} was not recorded: have {', '.join(self.gains)}")
        return AttainedPoints(self.t, self.gains[loss])

    def robust_accuracy(self, eps: float | None = None) -> float:
        """Point-wise robust accuracy at radius eps (default threat.eps): the fraction of samples that are
        clean-correct and have no misclassified candidate within distance eps."""
        eps = self.threat.eps if eps is None else eps
        return float(np.mean(self.flips() > eps))

    def flips(self) -> np.ndarray:
        """(N,) distance of each sample's closest misclassified point found (0 when clean-misclassified,
        inf when none): ``primal.closest_flips`` of the flip distances and the zero_one candidates."""
        return closest_flips(self.t, self.gains.get("zero_one"), self.clean_correct, self.flip_distance)

    @staticmethod
    def concat(results: list[AttackResult]) -> AttackResult:
        """Results of consecutive sample ranges joined along N (candidate columns padded with inf)."""
        if not results:
            raise ValueError("concat needs at least one result")
        first = results[0]
        width = max(r.t.shape[1] for r in results)
        flips = [r.flip_distance for r in results]
        points = [r.points for r in results]
        if all(p is not None for p in points):
            cols = max(p.shape[1] for p in points)
            padded = [torch.cat([p, p[:, :1].expand(-1, cols - p.shape[1], *p.shape[2:])], 1) for p in points]
            joined = torch.cat(padded)
        else:
            joined = None
        return AttackResult(
            attack=first.attack,
            threat=first.threat,
            t=np.concatenate([pad_columns(r.t, width, np.inf) for r in results]),
            gains={
                k: np.concatenate([pad_columns(r.gains[k], width, 0.0) for r in results]) for k in first.gains
            },
            clean_loss={k: np.concatenate([r.clean_loss[k] for r in results]) for k in first.clean_loss},
            clean_correct=np.concatenate([r.clean_correct for r in results]),
            flip_distance=None if any(f is None for f in flips) else np.concatenate(flips),
            points=joined,
            forward_passes=sum(r.forward_passes for r in results),
            backward_passes=sum(r.backward_passes for r in results),
            seconds=sum(r.seconds for r in results),
        )


def union(results: list[AttackResult], name: str = "best") -> AttackResult:
    """The candidates of several attacks on the same N samples joined per sample (columns of all of them),
    so the primal solver optimises over every point any of them found: at least as strong as each one.
    Losses recorded by all of them are kept; flip distances are the per-sample minimum; points are kept
    when every result has them; passes and seconds are totals."""
    if not results:
        raise ValueError("union needs at least one result")
    first = results[0]
    if any(r.n != first.n or r.threat != first.threat for r in results):
        raise ValueError("union needs results on the same samples under the same threat")
    losses = [k for k in first.gains if all(k in r.gains for r in results)]
    points = [r.points for r in results]
    flips = [r.flip_distance for r in results]
    return AttackResult(
        attack=name,
        threat=first.threat,
        t=np.concatenate([r.t for r in results], 1),
        gains={k: np.concatenate([r.gains[k] for r in results], 1) for k in losses},
        clean_loss={k: first.clean_loss[k] for k in losses},
        clean_correct=first.clean_correct,
        flip_distance=None if any(f is None for f in flips) else np.minimum.reduce(flips),
        points=torch.cat(points, 1) if all(p is not None for p in points) else None,
        forward_passes=sum(r.forward_passes for r in results),
        backward_passes=sum(r.backward_passes for r in results),
        seconds=sum(r.seconds for r in results),
    )


def model_device(model: nn.Module, device: str | torch.device | None) -> torch.device:
    """The device to attack on: the model's (its first parameter or buffer), else resolve_device(device).
    An explicit device that differs from the model's raises ValueError (the model is never moved)."""
    held = next((t.device for t in (*model.parameters(), *model.buffers())), None)
    if held is None:
        return resolve_device(device)
    if device is not None and resolve_device(device).type != held.type:
        raise ValueError(f"the model is on {held} but device={device!s} was requested: move the model first")
    return held


class Attack:
    """Base class: validation, batching, eval mode, seeding, pass counting, timing.

    Subclasses set ``name``, declare their options (``declared``: ``_options.Option`` entries, merged with
    the bases' by ``option_table``; each given value is converted, checked and set as an attribute of the
    same name here, the defaults filling the rest) and implement ``attack_batch(batch)``, which drives the
    model only through ``batch.evaluate`` / ``batch.gradient`` so that every pass is counted and every
    iterate recorded. The model is put in eval mode for the run and its training flag restored afterwards.
    """

    name: ClassVar[str] = ""
    #: The attack's own options (the base's are the keyword arguments of ``__init__``).
    declared: ClassVar[tuple[Option, ...]] = ()
    #: The threat norms the attack supports.
    norms: ClassVar[tuple[str, ...]] = NORMS
    #: Losses recorded whatever ``losses`` asks (zero_one: the result's robust accuracy; a subclass adds
    #: those its own rules read from the recorder).
    recorded: ClassVar[tuple[str, ...]] = ("zero_one",)

    def __init__(
        self,
        model: nn.Module,
        threat: ThreatModel,
        *,
        losses: tuple[str, ...] | None = None,
        seed: int = 0,
        batch_size: int = 256,
        device: str | torch.device | None = None,
        keep_points: bool = False,
        progress: Callable[[int, int], None] | None = None,
        population: int | None = None,
        **options: Any,
    ) -> None:
        if not isinstance(threat, ThreatModel):
            raise ValueError(f"threat must be a ThreatModel, got {type(threat).__name__}")
        if threat.norm not in self.norms:
            raise ValueError(
                f"attack {self.name!r} supports the norms {', '.join(self.norms)}, got {threat.norm}"
            )
        for key, value in resolve(self.option_table(), options, f"attack {self.name!r}").items():
            setattr(self, key, value)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.losses = tuple(check_loss(n) for n in (LOSSES if losses is None else losses))
        self.losses = (*self.losses, *(n for n in self.recorded if n not in self.losses))
        self.model, self.threat, self.seed, self.batch_size = model, threat, int(seed), int(batch_size)
        self.device = model_device(model, device)
        self.keep_points, self.progress = keep_points, progress
        if population is not None:
            Budget(threat, population)  # checks the population
        self.population = population

    @classmethod
    def option_table(cls) -> dict[str, Option]:
        """The declared options of the attack and its bases, by name (``_options.option_table``)."""
        return option_table(cls)

    def attack_batch(self, batch: Batch) -> None:
        """Attack one batch (every evaluated point lands in ``batch.recorder``)."""
        raise NotImplementedError

    def budget(self, n: int) -> Budget:
        """The budget of a run on n samples: the threat over the attack's ``population`` (the size of the
        whole data set these samples belong to, when they are one part of it), default n. Radius schedules
        use it: one sample may move up to population^(1/p) eps. ValueError if population < n."""
        if self.population is not None and self.population < n:
            raise ValueError(f"population ({self.population}) is smaller than the {n} samples given")
        return Budget(self.threat, n if self.population is None else self.population)

    def run(self, x: torch.Tensor, y: torch.Tensor) -> AttackResult:
        """Attack inputs x (N, *S) in [0, 1] with labels y (N,); returns the candidate points of all N,
        under the budget of ``budget(N)``."""
        x = torch.as_tensor(x)
        y = torch.as_tensor(y)
        if x.dim() < 2 or y.dim() != 1 or x.shape[0] != y.shape[0]:
            raise ValueError(
                f"need x of shape (N, *S) and y of shape (N,), got {tuple(x.shape)}, {tuple(y.shape)}"
            )
        if x.shape[0] == 0:
            raise ValueError("no samples to attack")
        if not torch.is_floating_point(x):
            raise ValueError(f"x must be a floating-point tensor, got {x.dtype}")
        low, high = torch.aminmax(x)
        if not (low >= 0 and high <= 1):  # NaN fails both
            raise ValueError("inputs must lie in the box [0, 1]")
        if y.min() < 0:
            raise ValueError("labels must be >= 0")
        budget = self.budget(x.shape[0])
        training = self.model.training
        self.model.eval()
        start = time.perf_counter()
        try:
            parts = [
                self._run_batch(x, y, b, s, budget)
                for b, s in enumerate(range(0, x.shape[0], self.batch_size))
            ]
        finally:
            self.model.train(training)
        result = parts[0] if len(parts) == 1 else AttackResult.concat(parts)
        result.seconds = time.perf_counter() - start
        return result

    def _run_batch(
        self, x: torch.Tensor, y: torch.Tensor, index: int, start: int, budget: Budget
    ) -> AttackResult:
        stop = min(start + self.batch_size, x.shape[0])
        passes = Passes()
        generator = torch.Generator(device=self.device).manual_seed(self.seed * 1_000_003 + index)
        batch = Batch(
            self.model,
            self.threat,
            x[start:stop].to(self.device, torch.float32),
            y[start:stop].to(self.device, torch.int64),
            losses=self.losses,
            passes=passes,
            generator=generator,
            budget=budget,
            keep_points=self.keep_points,
        )
        self.attack_batch(batch)
        rec = batch.recorder
        t, gains, points = rec.columns()
        if self.progress is not None:
            self.progress(stop, x.shape[0])
        return AttackResult(
            attack=self.name,
            threat=self.threat,
            t=t.cpu().numpy(),
            gains={k: v.cpu().numpy() for k, v in gains.items()},
            clean_loss={k: v.cpu().numpy() for k, v in rec.clean.items()},
            clean_correct=(batch.z0.argmax(1) == batch.y).cpu().numpy(),
            flip_distance=rec.flip.cpu().numpy(),
            points=None if points is None else points.cpu(),
            forward_passes=passes.forward,
            backward_passes=passes.backward,
        )
