"""The work plan of an evaluation: jobs (what to compute) times batches (which samples) = units.

Strategy (documented in docs/evaluate.md):

- ``clean``: clean losses and correctness of every sample (one forward pass).
- attacks depend on eps and, through their radius schedule, on p: one job per (attack, eps, p).
  Attained points of any job are valid candidates for every (eps, p) of the same norm and loss, so the
  aggregation pools them ("best" lower bound).
- certificates produce majorants phibar_i(t) valid for every t in [0, diam X], hence for every (eps, p):
  one job per certificate, run with the union of the default shell radii of all eps (so the majorant has
  knots at eps/4, eps/2, eps of every eps) unless the user gives ``radii`` in its options.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from wdrobust.certify.base import default_radii, distinct_radii
from wdrobust.evaluate.config import EvalConfig
from wdrobust.threat import ThreatModel


@dataclass(frozen=True)
class Job:
    """One kind of computation applied to every batch: kind in {clean, attack, certificate}."""

    kind: str
    method: str
    threat: ThreatModel | None = None

    @property
    def key(self) -> str:
        """Stable name used in the store, e.g. ``attack/wda/linf/eps=0.05/p=2``."""
        if self.kind == "clean":
            return "clean"
        if self.kind == "certificate":
            return f"certificate/{self.method}/{self.threat.norm}"
        return f"attack/{self.method}/{self.threat.norm}/eps={self.threat.eps!r}/p={_p_text(self.threat.p)}"

    def spec(self) -> dict[str, Any]:
        """JSON description stored in the ``jobs`` table."""
        out: dict[str, Any] = {"kind": self.kind, "method": self.method}
        if self.threat is not None:
            out.update(norm=self.threat.norm, eps=self.threat.eps, p=_p_text(self.threat.p))
        return out


def _p_text(p: float) -> str:
    return "inf" if math.isinf(p) else f"{p:g}"


def plan(cfg: EvalConfig) -> list[Job]:
    """Jobs in execution order: clean, the attacks (eps-major, then p), then the certificates."""
    jobs = [Job("clean", "clean")]
    jobs += [Job("attack", a, t) for t in cfg.threats() for a in cfg.attacks]
    cert_threat = ThreatModel(cfg.norm, max(cfg.eps_values), math.inf)
    jobs += [Job("certificate", c, cert_threat) for c in cfg.certificates]
    return jobs


def certificate_radii(cfg: EvalConfig, d: int) -> np.ndarray:
    """Union of ``certify.default_radii`` over the configured eps for input dimension d, without radii
    that are equal as float32 shell knots (``certify.base.distinct_radii``); shape (M,)."""
    grids = [default_radii(ThreatModel(cfg.norm, e, math.inf), d) for e in cfg.eps_values]
    return distinct_radii(np.concatenate(grids))


def units(jobs: list[Job], n_batches: int, shard: tuple[int, int] | None = None) -> list[tuple[Job, int]]:
    """The (job, batch) units of the plan in order (job-major), or those of shard (I, K): the units of
    batch b belong to shard (b mod K) + 1. The batches go round-robin, so every shard gets about 1/K of
    every job (the shards cost about the same when there are at least K batches), and every job of a
    batch is in the same shard (``empirical`` reads the attacks' points of its own batch)."""
    every = [(job, b) for job in jobs for b in range(n_batches)]
    if shard is None:
        return every
    i, k = shard
    return [(job, b) for job, b in every if b % k == i - 1]


def batches(n: int, batch_size: int) -> list[slice]:
    """Consecutive batches covering range(n)."""
    return [slice(lo, min(lo + batch_size, n)) for lo in range(0, n, batch_size)]


def unit_seed(seed: int, job: str, batch: int) -> int:
    """A seed for one unit that depends only on (seed, job, batch): results do not depend on the order
    or the session in which units run, so a resumed run equals an uninterrupted one."""
    digest = hashlib.sha256(f"{seed}/{job}/{batch}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF
