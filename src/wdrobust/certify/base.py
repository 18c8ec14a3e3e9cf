"""The certificate interface: one result type and a base class that handles the batching.

A certificate turns a trained classifier and test data (x_i, y_i) into per-sample growth majorants
phibar_i(t) >= phi_i(t) (docs/notation.md#shells), one per loss, plus the clean losses, so that the primal
solver can bound R_p(eps). Subclasses implement one method, ``_bound_batch``, that returns per-shell slopes
for one batch; ``Certificate.run`` does batching, eval mode, device moves, timing and the clean losses.
Most certificates bound per-class margin constants L_ij(r) >= sup ||grad m_j||_* on B(x_i, r) cap [0,1]^d;
``ShellBound.from_margins`` turns those into loss slopes and certified radii.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from wdrobust import primal
from wdrobust._device import resolve_device
from wdrobust._options import Option, option_table, resolve
from wdrobust.losses import (
    all_losses,
    check_certifiable,
    check_loss,
    lipschitz_from_margins,
    loss_cap,
    margins,
    max_other,
)
from wdrobust.primal.curves import Majorant
from wdrobust.threat import NORMS, ThreatModel, dual_of

#: Progress callback: called after every batch with (samples done, samples in total).
Progress = Callable[[int, int], None]
#: The dtype of the shell knots (the inputs' dtype in ``Certificate.run``); radii are distinct in it.
KNOT_DTYPE = np.float32


def box_diameter(norm: str, d: int) -> float:
    """Diameter of X = [0,1]^d in the norm: 1 (linf), sqrt(d) (l2), d (l1) (``ThreatModel.diameter``,
    which depends on the norm only)."""
    return ThreatModel(norm).diameter(d)


def default_radii(norm: str, eps: float, d: int, shells: int = 8) -> np.ndarray:
    """Outer shell radii r_1 < ... < r_M = diam X around a threat radius eps, for an input dimension d
    and the threat norm; shape (M,).

    A geometric grid around eps: eps/4, eps/2, eps, then up to ``shells - 3`` radii spaced geometrically
    between eps and the diameter, always ending at the diameter diam X (``box_diameter(norm, d)``). When
    eps = 0 (or eps >= diam) the grid is geometric from diam/100 to diam. Radii above the diameter are
    dropped.
    """
    if shells < 1:
        raise ValueError(f"shells must be >= 1, got {shells}")
    diam = box_diameter(norm, d)
    if 0 < eps < diam:
        below = eps * np.array([0.25, 0.5, 1.0])
        above = np.geomspace(eps, diam, max(shells - 2, 2))[1:]
        grid = np.concatenate([below, above])
    else:
        grid = np.geomspace(diam / 100, diam, shells)
    grid = grid[grid < diam * (1 - 1e-9)]
    return distinct_radii(np.concatenate([grid[-(shells - 1) :] if shells > 1 else grid[:0], [diam]]))


def distinct_radii(radii: Sequence[float] | np.ndarray) -> np.ndarray:
    """Sorted radii (M,) -> (M',) float64 without those equal to a larger neighbour in KNOT_DTYPE.

    Shell knots are tensors of the inputs' dtype (float32: ``Certificate.run`` casts), so radii that
    differ in float64 only can become equal knots; of each run of such radii the largest is kept (the
    last radius, the diameter, always stays).
    """
    r = np.sort(np.asarray(radii, dtype=np.float64).reshape(-1))
    rounded = r.astype(KNOT_DTYPE)
    return r[np.append(rounded[:-1] < rounded[1:], True)] if r.size else r


def check_radii(radii: Sequence[float] | np.ndarray, norm: str, d: int) -> np.ndarray:
    """Validate user radii (positive, strictly increasing) and end them at the diameter; shape (M,).

    Radii at or beyond the diameter are replaced by the diameter itself (no point lies farther); radii
    that are equal as float32 knots are merged (distinct_radii).
    """
    r = np.asarray(radii, dtype=np.float64).reshape(-1)
    if r.size == 0:
        raise ValueError("radii must not be empty")
    if np.isnan(r).any() or (r <= 0).any():
        raise ValueError("radii must be positive numbers")
    if (np.diff(r) <= 0).any():
        raise ValueError("radii must be strictly increasing")
    diam = box_diameter(norm, d)
    return distinct_radii(np.concatenate([r[r < diam * (1 - 1e-9)], [diam]]))


def certified_radius_from_shells(
    margin: torch.Tensor, lip: torch.Tensor, knots: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    """Largest r with m_j(x_i) + Phi_ij(r) < 0 for every j != y_i, from per-shell margin slopes.

    margin: (N, K) margins m_j(x_i); lip: (N, K, M) slopes L_ij(r_m) on shell m; knots: (N, M) outer radii.
    Phi_ij(r) = sum_m L_ijm |[0, r] cap (r_m-1, r_m]| is piecewise linear and non-decreasing, so the first
    crossing of -m_j is found shell by shell: r_ij = r_m-1 + (-m_j - Phi_ij(r_m-1)) / L_ijm on the shell
    where Phi reaches -m_j. Returns (N,): min over j of r_ij, 0 for misclassified samples (some m_j >= 0),
    the last knot when no margin can reach zero inside X.
    """
    n, k, _ = lip.shape
    lo = torch.cat([knots.new_zeros(n, 1), knots[:, :-1]], dim=1)  # (N, M)
    width = (knots - lo)[:, None, :]  # (N, 1, M)
    phi_lo = torch.cumsum(lip * width, dim=2) - lip * width  # Phi at the inner radius of each shell
    need = (-margin)[:, :, None]  # (N, K, 1)
    reach = lo[:, None, :] + (need - phi_lo) / lip.clamp(min=1e-300)
    inside = (phi_lo < need) & (reach <= knots[:, None, :])
    big = knots[:, -1:].expand(n, k)
    first = torch.where(inside, reach, torch.full_like(reach, math.inf)).amin(dim=2)
    r = torch.minimum(first, big)
    r = r.masked_fill(nn.functional.one_hot(y, k).bool(), math.inf).amin(dim=1)
    wrong = max_other(margin, y) >= 0
    return torch.where(wrong, torch.zeros_like(r), r)


@dataclass
class ShellBound:
    """What a certificate computes for one batch of n samples (torch tensors on any device).

    knots: (n, M) outer shell radii, last = diam X. slopes: {loss: (n, M)} per-shell Lipschitz bounds of
    the loss (non-zero_one losses). lipschitz: (n,) loss Lipschitz bound at the smallest shell.
    certified_radius: (n,) or None. cell_radius: (n,) or None. majorants: {loss: Majorant} built by the
    certificate itself (e.g. staircases with jumps); a loss found there ignores ``slopes``.
    """

    knots: torch.Tensor
    slopes: dict[str, torch.Tensor]
    lipschitz: torch.Tensor
    certified_radius: torch.Tensor | None = None
    cell_radius: torch.Tensor | None = None
    majorants: dict[str, Majorant] = field(default_factory=dict)

    @classmethod
    def from_margins(
        cls,
        lip: torch.Tensor,
        knots: torch.Tensor,
        z: torch.Tensor,
        y: torch.Tensor,
        losses: Sequence[str],
        cell_radius: torch.Tensor | None = None,
    ) -> ShellBound:
        """Loss slopes from per-class margin constants lip (n, K, M) >= sup_shell ||grad m_j||_*.

        Lip(ce), Lip(margin) <= max_{j != y} L_ij (losses.lipschitz_from_margins), shell by shell; the
        certified radius (for zero_one) comes from the margins m_j = z_j - z_y and the same slopes.
        """
        n, k, m = lip.shape
        flat = lip.permute(0, 2, 1).reshape(n * m, k)
        yy = y.repeat_interleave(m)
        slopes = {
            name: lipschitz_from_margins(name, flat, yy).reshape(n, m).clamp(min=0)
            for name in losses
            if name != "zero_one"
        }
        radius = certified_radius_from_shells(margins(z, y), lip, knots, y) if "zero_one" in losses else None
        lip0 = lipschitz_from_margins("margin", lip[:, :, 0], y)
        return cls(knots, slopes, lip0, radius, cell_radius)


def _cat(parts: list[Any]) -> Any:
    if any(p is None for p in parts):
        return None
    return np.concatenate(parts)


@dataclass
class CertificateResult:
    """Per-sample output of a certificate over N samples (numpy arrays, float64 unless stated).

    method: registry name; sound: True only when every majorant is a guaranteed upper bound;
    norm: the threat norm the majorants are measured in; majorants: {loss: Majorant} for the non-zero_one
    losses; clean_loss: {loss: (N,)} (zero_one included
    when requested); clean_correct: (N,) bool; certified_radius: (N,) or None (zero_one; 0 for
    misclassified); lipschitz: (N,) or None, loss Lipschitz bound at the smallest shell;
    cell_radius: (N,) or None; seconds: wall-clock time; note: free text (e.g. solver time-outs).
    """

    method: str
    sound: bool
    norm: str
    majorants: dict[str, Majorant]
    clean_loss: dict[str, np.ndarray]
    clean_correct: np.ndarray
    certified_radius: np.ndarray | None = None
    lipschitz: np.ndarray | None = None
    cell_radius: np.ndarray | None = None
    seconds: float = 0.0
    note: str = ""

    @property
    def n(self) -> int:
        """Number of samples N."""
        return int(self.clean_correct.shape[0])

    def upper_bound(self, loss: str, threat: ThreatModel) -> primal.UpperBound:
        """Upper bound on R_p(eps) for ``loss`` under ``threat`` (of the certificate's norm):
        primal.upper_bound of the loss's growth majorant (``primal.certified_growth``: the majorant, or
        for zero_one the certified radii), sound when the certificate is.
        """
        check_loss(loss)
        growth = primal.certified_growth(
            loss, self.majorants, self.certified_radius, self.clean_correct, self.sound, self.method
        )
        if growth is None:
            if loss == "zero_one":
                raise ValueError(f"certificate {self.method!r} was run without the zero_one loss")
            raise ValueError(f"certificate {self.method!r} has no majorant for loss {loss!r}")
        return primal.upper_bound(growth, threat, clean=self.clean_loss[loss])

    @staticmethod
    def concat(results: Sequence[CertificateResult]) -> CertificateResult:
        """Join results of consecutive batches of the same certificate (same method, norm, losses)."""
        if not results:
            raise ValueError("concat needs at least one result")
        first = results[0]
        if any(r.method != first.method or r.norm != first.norm for r in results):
            raise ValueError("concat: results come from different certificates or norms")
        if any(set(r.majorants) != set(first.majorants) for r in results):
            raise ValueError("concat: results bound different losses")
        majorants = {}
        for loss in first.majorants:
            parts = [r.majorants[loss] for r in results]
            if len({p.knots.shape[1] for p in parts}) != 1:
                raise ValueError("concat: majorants have different numbers of shells")
            majorants[loss] = Majorant.stack(parts)
        return CertificateResult(
            method=first.method,
            sound=all(r.sound for r in results),
            norm=first.norm,
            majorants=majorants,
            clean_loss={k: np.concatenate([r.clean_loss[k] for r in results]) for k in first.clean_loss},
            clean_correct=np.concatenate([r.clean_correct for r in results]),
            certified_radius=_cat([r.certified_radius for r in results]),
            lipschitz=_cat([r.lipschitz for r in results]),
            cell_radius=_cat([r.cell_radius for r in results]),
            seconds=sum(r.seconds for r in results),
            note="; ".join(dict.fromkeys(r.note for r in results if r.note)),
        )


def _numpy(t: torch.Tensor | None) -> np.ndarray | None:
    return None if t is None else t.detach().to("cpu", torch.float64).numpy()


class Certificate(ABC):
    """Base class: subclasses set ``name`` and ``sound``, declare their options and what they need, and
    implement ``_bound_batch``.

    model: classifier f: [0,1]^d -> R^K; norm: the threat norm (one of ``norms``); losses: subset of
    losses.CERTIFIABLE; batch_size: samples per batch; progress: optional callback (done, total) after
    each batch; orders: the Wasserstein orders p the majorants will serve (None: every p; at p = inf only
    the growth up to eps matters, so a certificate may then bound the growth beyond its largest inner
    radius cheaply and loosely, ``needs_far_growth``); options: the declared options (``declared``,
    merged with the bases' by ``option_table``; each given value is converted, checked and set as an
    attribute of the same name here, the defaults filling the rest). Every certificate has ``radii``:
    outer shell radii (default: the eps-free grid default_radii(norm, 0, d, shells), geometric from
    diam/100 to diam; ``options_for(norm, eps, d)`` gives the grid around a threat radius eps).
    """

    name: ClassVar[str] = ""
    sound: ClassVar[bool] = True
    #: Size of the default shell grid (``default_radii``'s shells).
    default_shells: ClassVar[int] = 8
    #: Whether the certificate reads the model's layers (a TorchScript module, whose layers it cannot
    #: read, is refused); False for those that only evaluate the model and its gradients.
    reads_layers: ClassVar[bool] = True
    #: The threat norms the certificate supports.
    norms: ClassVar[tuple[str, ...]] = NORMS
    #: Whether ``run(x, y, visited=...)`` reads the points an attack visited from each sample (N, M, *S).
    needs_points: ClassVar[bool] = False
    #: Whether the work is one program per sample (a progress bar then advances per sample).
    per_sample_programs: ClassVar[bool] = False
    #: The certificate's own options (the base's keyword arguments are the run's context).
    declared: ClassVar[tuple[Option, ...]] = (
        Option("radii", tuple, None, None, "outer shell radii, increasing (default: a grid around eps)"),
    )

    @classmethod
    def option_table(cls) -> dict[str, Option]:
        """The declared options of the certificate and its bases, by name (``_options.option_table``)."""
        return option_table(cls)

    @classmethod
    def options_for(cls, norm: str, eps: float, d: int) -> dict[str, Any]:
        """The options this certificate derives from a threat radius eps for input dimension d: the shell
        radii default_radii(norm, eps, d, default_shells) (knots at eps/4, eps/2, eps, ...)."""
        return {"radii": default_radii(norm, eps, d, cls.default_shells)}

    def __init__(
        self,
        model: nn.Module,
        norm: str = "linf",
        *,
        losses: Sequence[str] = ("ce", "margin"),
        device: str | torch.device | None = None,
        batch_size: int = 256,
        progress: Progress | None = None,
        orders: Sequence[float] | None = None,
        **options: Any,
    ) -> None:
        if not isinstance(norm, str):
            raise ValueError(f"norm must be a norm name (linf, l2, l1), got {type(norm).__name__}")
        self.dual = dual_of(norm)  # checks the name
        if norm not in self.norms:
            raise ValueError(
                f"certificate {self.name!r} supports {' and '.join(self.norms)} only, got {norm!r}"
            )
        losses = tuple(dict.fromkeys(losses))
        if not losses:
            raise ValueError("losses must not be empty")
        for name in losses:
            check_certifiable(name)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if self.reads_layers and any(isinstance(m, torch.jit.ScriptModule) for m in model.modules()):
            raise ValueError(
                f"{self.name} reads the model's layers, which a TorchScript module hides: give the weights "
                "with their architecture (--arch), or use first-order / empirical"
            )
        self.shells = self.default_shells
        for key, value in resolve(self.option_table(), options, f"certificate {self.name!r}").items():
            setattr(self, key, value)
        self.radii = None if self.radii is None else np.asarray(self.radii, dtype=np.float64)
        self.device = resolve_device(device)
        self.model = model.to(self.device)
        self.norm = norm
        self.losses = losses
        self.batch_size = batch_size
        self.progress = progress
        self.orders = None if orders is None else tuple(float(p) for p in orders)
        if self.orders is not None and not all(p >= 1 for p in self.orders):
            raise ValueError(f"orders must be Wasserstein orders p >= 1 (or inf), got {orders!r}")
        self.note = ""

    @property
    def needs_far_growth(self) -> bool:
        """Whether a majorant's growth beyond the largest inner radius (up to diam X) is read: for a
        loss with a majorant (not zero_one, whose certified radii never read it) at a finite order p."""
        finite = self.orders is None or any(math.isfinite(p) for p in self.orders)
        return finite and any(loss != "zero_one" for loss in self.losses)

    def shell_radii(self, d: int) -> np.ndarray:
        """Outer radii (M,) for input dimension d: the given radii (validated, check_radii) or the eps-free
        grid default_radii(norm, 0, d, shells)."""
        if self.radii is None:
            return default_radii(self.norm, 0.0, d, self.shells)
        return check_radii(self.radii, self.norm, d)

    def whole_box_knots(self, x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """Knots (n, 1) = diam X for the batch x (n, *S): one shell over all of X, on like's dtype/device."""
        return shell_knots(np.array([box_diameter(self.norm, x[0].numel())]), like)

    @abstractmethod
    def _bound_batch(self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, **batch: Any) -> ShellBound:
        """Per-shell slopes for one batch: x (n, *S) on self.device, y (n,), clean logits z (n, K).

        ``batch`` holds per-sample extra inputs sliced to this batch (see ``run``).
        """

    def run(self, x: torch.Tensor, y: torch.Tensor, **per_sample: torch.Tensor | None) -> CertificateResult:
        """Certify samples x (N, *S) in [0,1] with labels y (N,), batch by batch.

        per_sample: optional extra tensors with first dimension N (None entries are ignored), sliced per
        batch and passed to ``_bound_batch``. The model is put in eval mode and restored afterwards.
        """
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"x has {x.shape[0]} samples but y has {y.shape[0]}")
        if x.shape[0] == 0:
            raise ValueError("no samples to certify")
        extras = {k: v for k, v in per_sample.items() if v is not None}
        for key, val in extras.items():
            if val.shape[0] != x.shape[0]:
                raise ValueError(f"{key} has {val.shape[0]} samples but x has {x.shape[0]}")
        training = self.model.training
        self.model.eval()
        start = time.perf_counter()
        results = []
        try:
            for lo in range(0, x.shape[0], self.batch_size):
                sl = slice(lo, lo + self.batch_size)
                xb = x[sl].to(self.device, torch.float32)
                yb = y[sl].to(self.device, torch.long)
                results.append(self._run_batch(xb, yb, {k: v[sl].to(self.device) for k, v in extras.items()}))
                if self.progress is not None:
                    self.progress(min(lo + self.batch_size, x.shape[0]), x.shape[0])
        finally:
            self.model.train(training)
        out = CertificateResult.concat(results)
        out.seconds = time.perf_counter() - start
        return out

    def _run_batch(
        self, x: torch.Tensor, y: torch.Tensor, extras: dict[str, torch.Tensor]
    ) -> CertificateResult:
        with torch.no_grad():
            z = self.model(x)
        clean = {k: _numpy(v) for k, v in all_losses(z, y, self.losses).items()}
        bound = self._bound_batch(x, y, z, **extras)
        knots = _numpy(bound.knots)
        majorants = {}
        for loss in self.losses:
            if loss == "zero_one":
                continue
            cap = np.maximum(loss_cap(loss) - clean[loss], 0.0)
            own = bound.majorants.get(loss)
            if own is None:
                own = Majorant(knots, _numpy(bound.slopes[loss]))
            majorants[loss] = Majorant(
                own.knots,
                own.slopes,
                cap=np.minimum(own.cap, cap),
                sound=self.sound,
                name=f"{self.name}:{loss}",
                jumps=own.jumps,
            )
        return CertificateResult(
            method=self.name,
            sound=self.sound,
            norm=self.norm,
            majorants=majorants,
            clean_loss=clean,
            clean_correct=(z.argmax(dim=1) == y).cpu().numpy(),
            certified_radius=_numpy(bound.certified_radius),
            lipschitz=_numpy(bound.lipschitz),
            cell_radius=_numpy(bound.cell_radius),
            note=self.note,
        )


def shell_knots(radii: np.ndarray, like: torch.Tensor) -> torch.Tensor:
    """Radii (M,) broadcast to per-sample knots (n, M) on like's device and dtype."""
    return torch.as_tensor(radii, dtype=like.dtype, device=like.device).expand(like.shape[0], -1).contiguous()
