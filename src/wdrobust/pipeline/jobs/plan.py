"""The work plan of an evaluation: jobs (what to compute) times batches (which samples) = units.

Strategy (documented in docs/evaluate.md):

- ``clean``: clean losses and correctness of every sample (one forward pass).
- attacks depend on eps and, through their radius schedule, on p: one job per (attack, eps, p).
  Attained points of any job are valid candidates for every (eps, p) of the same norm and loss, so the
  aggregation pools them ("best" lower bound).
- certificates produce majorants phibar_i(t) valid for every t in [0, diam X], hence for every (eps, p):
  one job per certificate (``jobs.certificate``).
"""

from __future__ import annotations

import hashlib

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


def units(jobs: list[Job], n_batches: int, shard: tuple[int, int] | None = None) -> list[tuple[Job, int]]:
    """The (job, batch) units of the plan in order (job-major), or those of shard (I, K): the units of
    batch b belong to shard (b mod K) + 1. The batches go round-robin, so every shard gets about 1/K of
    every job (the shards cost about the same when there are at least K batches), and every job of a
    batch is in the same shard (a certificate that ``needs_points`` reads the attacks' points of its own
    batch)."""
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
