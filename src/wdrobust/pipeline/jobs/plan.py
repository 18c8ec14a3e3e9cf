"""The work plan of an evaluation: jobs (what to compute) times batches (which samples) = units.

Strategy (documented in docs/evaluate.md):

- ``clean``: clean losses and correctness of every sample (one forward pass).
- attacks depend on eps and, through their radius schedule, on p: one job per (attack, eps, p).
  Attained points of any job are valid candidates for every (eps, p) of the same norm and loss, so the
  aggregation pools them ("best" lower bound).
- certificates produce majorants phibar_i(t) valid for every t in [0, diam X], hence for every (eps, p):
  one job per certificate (``jobs.certificate``).

Units (``Layout``): every job runs on batches of ``batch_size`` samples (the unit of sharding: every job
of a batch is in the same shard). A certificate whose batch would hold more than ``UNIT_SECONDS`` of work
(estimated from the dry run's seconds, ``parts_for``) cuts every batch into ``parts`` pieces of at most
ceil(batch_size / parts) samples; its unit u is piece u mod parts of batch u // parts (with one part, the
unit is the batch, as in stores written before parts existed). A certificate bounds each sample on its
own, so the pieces give the same results as whole batches (to float32 rounding: kernels of other batch
sizes round differently); attacks are never cut (their random starts are seeded per unit), nor are the
certificates that read the attacks' points of their batch.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from wdrobust.pipeline.config import EvalConfig
from wdrobust.pipeline.jobs.attack import AttackJob
from wdrobust.pipeline.jobs.base import Job
from wdrobust.pipeline.jobs.certificate import CertificateJob
from wdrobust.pipeline.jobs.clean import CleanJob
from wdrobust.threat import ThreatModel


def plan(cfg: EvalConfig) -> list[Job]:
    """Jobs in execution order: clean, the attacks (eps-major, then p), then the certificates."""
    jobs: list[Job] = [CleanJob()]
    jobs += [job for t in cfg.threats() for job in attack_jobs(cfg, t)]
    jobs += [CertificateJob(c, cfg.norm, max(cfg.eps_values)) for c in cfg.certificates]
    return jobs


def attack_jobs(cfg: EvalConfig, threat: ThreatModel) -> list[AttackJob]:
    """The attack jobs of one threat model of the grid, in the configured order (their keys name their
    records in the store)."""
    return [AttackJob(a, threat) for a in cfg.attacks]


#: Seconds of work one unit should hold at most: a certificate estimated above it per batch is cut.
UNIT_SECONDS = 60.0
#: The store's meta key of the pieces per batch of the cut jobs ({job key: pieces}; absent: none cut).
PARTS_META = "unit_parts"


@dataclass(frozen=True)
class Layout:
    """How the n evaluated samples are cut into units: batches of ``batch_size``, and for the job keys in
    ``parts`` (certificates whose batch is too much work for one unit) each batch in that many pieces."""

    n: int
    batch_size: int
    parts: Mapping[str, int] = field(default_factory=dict)

    def n_batches(self) -> int:
        return len(batches(self.n, self.batch_size))

    def pieces(self, key: str) -> int:
        """The number of pieces each batch of job ``key`` is cut into (1: the batch is one unit)."""
        return self.parts.get(key, 1)

    def units(self, key: str) -> list[int]:
        """The unit indices of job ``key`` in sample order: b * pieces + j for piece j of batch b."""
        k = self.pieces(key)
        size = math.ceil(self.batch_size / k)
        return [b * k + j for b, sl in enumerate(batches(self.n, self.batch_size))
                for j in range(math.ceil((sl.stop - sl.start) / size))]  # fmt: skip

    def batch(self, key: str, unit: int) -> int:
        """The batch that unit ``unit`` of job ``key`` belongs to."""
        return unit // self.pieces(key)

    def samples(self, key: str, unit: int) -> slice:
        """The samples of unit ``unit`` of job ``key``: its piece of its batch."""
        k = self.pieces(key)
        size = math.ceil(self.batch_size / k)
        start = self.batch(key, unit) * self.batch_size + (unit % k) * size
        return slice(start, min(start + size, (unit // k + 1) * self.batch_size, self.n))


def may_exceed(one: float, batch_size: int, target: float = UNIT_SECONDS) -> bool:
    """Whether a batch of ``batch_size`` samples at ``one`` second per sample may hold more than
    ``target`` seconds of work (then its cost on three samples is worth measuring: ``parts_for``)."""
    return one * batch_size > target


def parts_for(one: float, three: float | None, batch_size: int, target: float = UNIT_SECONDS) -> int:
    """Pieces per batch for a certificate that took ``one`` seconds on one sample and ``three`` on three
    (None: not measured, the batch is small enough at ``one`` per sample). Cost model c + a m for m
    samples, a = (three - one) / 2, c = one - a (c >= 0): the batch stays whole when c + a batch_size <=
    target, or when the fixed cost c is at least half the target (pieces would mostly repeat c); else
    pieces of m = floor((target - c) / a) samples (at least 1)."""
    if three is None or not may_exceed(one, batch_size, target):
        return 1
    a = max((three - one) / 2, 0.0)
    c = max(one - a, 0.0)
    if a == 0.0 or c + a * batch_size <= target or c >= target / 2:
        return 1
    m = max(int((target - c) // a), 1)
    return math.ceil(batch_size / m)


def units(jobs: list[Job], layout: Layout, shard: tuple[int, int] | None = None) -> list[tuple[Job, int]]:
    """The (job, unit) pairs of the plan in order (job-major, ``Layout.units``), or those of shard (I, K):
    the units of batch b belong to shard (b mod K) + 1. The batches go round-robin, so every shard gets
    about 1/K of every job (the shards cost about the same when there are at least K batches), and every
    job of a batch is in the same shard (a certificate that ``needs_points`` reads the attacks' points of
    its own batch)."""
    every = [(job, u) for job in jobs for u in layout.units(job.key)]
    if shard is None:
        return every
    i, k = shard
    return [(job, u) for job, u in every if layout.batch(job.key, u) % k == i - 1]


def batches(n: int, batch_size: int) -> list[slice]:
    """Consecutive batches covering range(n)."""
    return [slice(lo, min(lo + batch_size, n)) for lo in range(0, n, batch_size)]


def unit_seed(seed: int, job: str, batch: int) -> int:
    """A seed for one unit that depends only on (seed, job, batch): results do not depend on the order
    or the session in which units run, so a resumed run equals an uninterrupted one."""
    digest = hashlib.sha256(f"{seed}/{job}/{batch}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF
