"""The ``bab`` certificate (sound): certified radii by bisection with branch and bound as the oracle.

For a correctly classified sample, r_lo = ``crown``'s certified radius (every ball B(x_i, r), r <= r_lo, is
verified) and r_hi = an upper bound of the flip distance (the caller's ``upper``, e.g. an attack's flip
distance, else diam X) bracket d_i*. An attack's flip distance is usually within a fraction of a percent of
d_i*, so the steps first probe just below the upper end, r = max(mid, r_hi (1 - TOP tol)) (verified there:
the bracket is closed in one step), and bisect from the first unknown answer on. Each step verifies
B(x_i, r) cap [0,1]^d by branch and bound (``search.verify``): verified -> r_lo = r; falsified -> r_hi =
||x_cex - x_i|| <= r (a re-checked counterexample: d_i* <= r_hi); unknown (time) -> r_hi = r for the
search only. It stops when r_hi - r_lo <= tol (relative to r_hi, absolute floor) or the per-sample budget
is spent; a sample is proven when its bracket [r_lo, attained upper end] is within tol. The certified
radius r_lo is sound: a verified ball has no flip. ce / margin get ``crown``'s majorants (BaB-tightened
margin bounds at the shell radii are not built yet).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from wdrobust._options import Option, positive
from wdrobust.certify.bab.search import BabOptions, verify
from wdrobust.certify.base import CertificateResult, ShellBound, box_diameter
from wdrobust.certify.crown import CrownCertificate
from wdrobust.threat import lp_norm

#: The first probes sit this share of the tolerance below the upper end (module docstring).
TOP = 0.9


@dataclass
class RadiusBracket:
    """Per sample (N,): lower (certified radius), upper (flip distance bound: a found counterexample's
    distance, else the given upper bound or diam X), proven (upper - lower <= tol upper: the bracket of d_i*
    closed to the tolerance), domains (BaB domains bounded), seconds."""

    lower: np.ndarray
    upper: np.ndarray
    proven: np.ndarray
    domains: np.ndarray
    seconds: np.ndarray

    @staticmethod
    def concat(parts: list[RadiusBracket]) -> RadiusBracket:
        return RadiusBracket(
            *(np.concatenate([getattr(p, f) for p in parts]) for f in RadiusBracket.__annotations__)
        )

    def summary(self) -> str:
        return (
            f"bab: {int(self.proven.sum())}/{self.proven.size} radii bracketed to the tolerance, "
            f"{int(self.domains.sum())} domains, {float(self.seconds.sum()):.1f} s"
        )


class BabCertificate(CrownCertificate):
    """Certified radii from branch-and-bound bisection (zero_one); ce / margin from ``crown``.

    Options: budget (seconds per sample for the whole bisection), time_limit (seconds per BaB call), tol
    (relative bracket width to stop at), bab (further ``BabOptions`` fields as a dict: batch, mode, ...),
    and ``crown``'s options. ``run(x, y, upper=...)`` takes optional upper bounds of the flip distances.
    After ``run``, ``brackets`` holds the per-sample RadiusBracket and the note summarises it.
    """

    name = "bab"
    declared = (
        Option("budget", float, 30.0, positive(), "seconds per sample for the whole bisection"),
        Option("time_limit", float, 5.0, positive(), "seconds per BaB call"),
        Option("tol", float, 1e-3, positive(), "relative bracket width to stop at"),
        Option("bab", dict, None, None, "further BabOptions fields (a table: batch, mode, ...)"),
    )

    def __init__(self, model: nn.Module, norm: str = "linf", **options: Any) -> None:
        super().__init__(model, norm, **options)
        self.options = BabOptions(time_limit=self.time_limit, **(self.bab or {}))
        self.brackets: RadiusBracket | None = None
        self._parts: list[RadiusBracket] = []

    def run(self, x: torch.Tensor, y: torch.Tensor, **per_sample: Any) -> CertificateResult:
        """Certificate.run; per_sample may hold ``upper`` (N,), upper bounds of the flip distances."""
        if per_sample.get("upper") is not None:
            per_sample["upper"] = torch.as_tensor(per_sample["upper"], dtype=torch.float64)
        self._parts = []
        out = super().run(x, y, **per_sample)
        self.brackets = RadiusBracket.concat(self._parts) if self._parts else None
        out.note = self.brackets.summary() if self.brackets else "bab: zero_one not requested, crown only"
        return out

    def _bound_batch(self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, **batch: Any) -> ShellBound:
        bound = super()._bound_batch(x, y, z)
        if bound.certified_radius is None:
            return bound
        upper = batch.get("upper")
        diam = box_diameter(self.norm, x[0].numel())
        rows = []
        for i in range(x.shape[0]):
            hi = diam if upper is None or not np.isfinite(float(upper[i])) else min(float(upper[i]), diam)
            if int(z[i].argmax()) != int(y[i]):
                rows.append((0.0, 0.0, True, 0, 0.0))
                continue
            rows.append(
                self._bisect(x[i].to(torch.float64), int(y[i]), float(bound.certified_radius[i]), hi, i)
            )
        lower, up, proven, domains, seconds = (np.array(c) for c in zip(*rows, strict=True))
        self._parts.append(RadiusBracket(lower, up, proven, domains, seconds))
        bound.certified_radius = torch.as_tensor(lower, dtype=torch.float64, device=z.device)
        return bound

    def _bisect(self, x0: torch.Tensor, y: int, lo: float, hi: float, index: int) -> tuple:
        """(lower, upper, proven, domains, seconds): one sample's radius bracket (module docstring)."""
        start = time.perf_counter()
        graph = self.graph()
        upper, domains, top = hi, 0, True
        while hi - lo > self.tol * max(hi, 1e-6):
            left = self.budget - (time.perf_counter() - start)
            if left <= 0:
                break
            mid = max((lo + hi) / 2, hi * (1 - TOP * self.tol)) if top else (lo + hi) / 2
            opts = replace(
                self.options, time_limit=min(self.options.time_limit, left), seed=self.options.seed + index
            )
            res = verify(graph, x0, y, mid, self.norm, opts)
            domains += res.domains
            if res.status == "verified":
                lo = mid
            elif res.status == "falsified":
                dist = float(lp_norm((res.counterexample - x0)[None], self.norm)[0])
                hi = upper = min(upper, dist)
            else:
                hi, top = mid, False
        proven = upper - lo <= self.tol * max(upper, 1e-6)
        return lo, upper, proven, domains, time.perf_counter() - start
