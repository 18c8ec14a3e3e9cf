"""Aggregation at the scale of a full test set: ``pipeline.aggregate`` of 10,000 samples.

The records are synthetic but shaped like a real run's: one attack job per p (30 attained points per
sample), a ``cell``-like certificate with 1,600-knot majorants and a ``local``-like one with 12 shells
(both sound, so the ``combined`` pointwise minimum is built too), ce and zero_one losses, one eps and
p in {1, 2, inf}. Figures: seconds of the whole aggregation, and of one ``upper_bound`` of the 1,600-knot
majorant per p. Baseline in the same run: one evaluation phibar_i(r_ik) at all knots (``Majorant.at``),
the least any exact bound must read.

Before the vectorised evaluation (commit e0a5a43), ``upper_bound`` read phibar once per knot: on a
random 10,000 x 1,600 majorant it took 345 s for p = 1 alone (measured once, see
docs/evaluate.md); the figures here are the after side.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.run import row
from wdrobust.pipeline.aggregate import Records, aggregate
from wdrobust.pipeline.config import EvalConfig
from wdrobust.pipeline.records import AttackRecord, CertificateRecord
from wdrobust.primal import Majorant, upper_bound
from wdrobust.threat import ThreatModel

N, KNOTS, SHELLS, POINTS = 10_000, 1_600, 12, 30
P_VALUES = ("1", "2", "inf")


def majorant(rng: np.random.Generator, n: int, m: int, scale: float) -> Majorant:
    """Increasing knots up to a diameter of 8, increasing slopes, a cap per sample."""
    widths = rng.random((n, m)) + 0.05
    knots = np.cumsum(widths, axis=1) / widths.sum(axis=1, keepdims=True) * 8.0
    slopes = np.sort(rng.random((n, m)), axis=1) * rng.random((n, 1)) * scale
    return Majorant(knots, slopes, cap=rng.random(n) * 10 + 1)


def certificate(name: str, major: Majorant, radius: np.ndarray) -> CertificateRecord:
    return CertificateRecord(name, True, {"ce": major}, radius, None, None, 0.0, 0, 0)


def records(seed: int = 0) -> Records:
    rng = np.random.default_rng(seed)
    correct = rng.random(N) < 0.9
    clean = {"ce": rng.random(N) * 0.5, "zero_one": (~correct).astype(np.float64)}
    attacks = {}
    for p in P_VALUES:
        t = np.sort(rng.random((N, POINTS)), axis=1) * 0.1
        gains = {"ce": np.sqrt(t) * rng.random((N, 1)) * 3}
        attacks[f"attack/wda/linf/eps=0.03/p={p}"] = AttackRecord(
            "wda", 0.03, float(p), t, gains, rng.random(N) * 0.2, 0.0, 0, 0
        )
    certificates = {
        "certificate/cell/linf": certificate("cell", majorant(rng, N, KNOTS, 40.0), rng.random(N) * 0.02),
        "certificate/local/linf": certificate("local", majorant(rng, N, SHELLS, 60.0), rng.random(N) * 0.02),
    }
    cfg = EvalConfig(n=N, eps=("0.03",), p=P_VALUES, losses=("ce", "zero_one"), attacks=("wda",),
                     certificates=("cell", "local"))  # fmt: skip
    return Records(
        cfg, {"n": N}, {}, np.zeros(N, dtype=np.int64), correct, clean, attacks, certificates, [], []
    )


def main() -> list[dict]:
    recs = records()
    cell = recs.certificates["certificate/cell/linf"].majorants["ce"]
    start = time.perf_counter()
    cell.at(cell.knots)
    base = time.perf_counter() - start
    rows = []
    for p in P_VALUES:
        start = time.perf_counter()
        upper_bound(cell, ThreatModel("linf", 0.03, float(p)), clean=recs.clean_loss["ce"])
        seconds = time.perf_counter() - start
        rows += [
            row(f"upper_bound 1e4x1600 p={p}", "seconds", seconds, "s"),
            row(f"upper_bound 1e4x1600 p={p}", "time / phibar at every knot", seconds / base, "x"),
        ]
    start = time.perf_counter()
    aggregate(recs)
    rows.append(row("aggregate 1e4 samples, 1600 knots, 3 p", "seconds", time.perf_counter() - start, "s"))
    return rows


if __name__ == "__main__":
    for r in main():
        print(r)
