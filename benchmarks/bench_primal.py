"""Speed of the primal solver on large synthetic batches (times and ratios to simple numpy baselines).

lower_bound: N = 1,000,000 samples x 20 attained points (goal: under 5 s on 2 cores).
upper_bound: N = 100,000 samples x 8 shells.
Baselines, timed in the same run: ``np.sort`` of the same (N, M) distances along the points axis (lower
bound) and one evaluation phibar_i(eps) of the majorant over all samples (upper bound).
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.run import row
from wdrobust.primal import AttainedPoints, Majorant, lower_bound, upper_bound
from wdrobust.threat import ThreatModel


def attack_like_points(n: int, m: int, seed: int = 0) -> AttainedPoints:
    """Candidates along a radius schedule: concave-ish gains with noise, some useless points."""
    rng = np.random.default_rng(seed)
    t = np.sort(rng.random((n, m)), axis=1) * 0.5
    g = np.sqrt(t) * rng.random((n, 1)) * 2 + 0.05 * rng.standard_normal((n, m))
    return AttainedPoints(t, g)


def shell_majorant(n: int, m: int, seed: int = 1) -> Majorant:
    """Shell majorants: increasing Lipschitz constants on geometric radii, capped."""
    rng = np.random.default_rng(seed)
    knots = np.broadcast_to(np.geomspace(0.01, 1.0, m) * 8.0, (n, m))
    slopes = np.sort(rng.random((n, m)), axis=1) * rng.random((n, 1)) * 5
    return Majorant(knots, slopes, cap=rng.random(n) * 10)


def _best_of(repeats: int, fn) -> float:
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> list[dict]:
    rows: list[dict] = []
    points = attack_like_points(1_000_000, 20)
    threat = ThreatModel("l2", 0.1, 2)
    raw = points.t[:, 1:].copy()
    base = _best_of(3, lambda: np.sort(raw, axis=1))
    lb = _best_of(2, lambda: lower_bound(points, threat))
    rows += [
        row("lower_bound 1e6x20", "seconds", lb, "s"),
        row("lower_bound 1e6x20", "time / np.sort of (N, M)", lb / base, "x"),
    ]
    major = shell_majorant(100_000, 8)
    base_ub = _best_of(3, lambda: major(threat.eps))
    ub = _best_of(2, lambda: upper_bound(major, threat))
    rows += [
        row("upper_bound 1e5x8", "seconds", ub, "s"),
        row("upper_bound 1e5x8", "time / one evaluation of phibar(eps)", ub / base_ub, "x"),
    ]
    return rows


if __name__ == "__main__":
    for row in main():
        print(row)
