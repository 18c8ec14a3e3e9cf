"""Branch and bound against the MILP: `bab` certified radii versus `exact` minimal flip distances.

    PYTHONPATH=src .venv/bin/python scripts/bab_vs_exact.py [--n 20] [--budget 30] [--tol 1e-3]

Model: the digits MLP 64-32-32-10 (ReLU) trained by `wdrobust train --widths 32,32` (seed 0; trained when
runs/models/digits-mlp-32x32.safetensors is missing). First N test digits, linf, one CPU thread. Both
certificates get the same upper bounds of the flip distances (wda++, seed 0) and run one sample at a time:

- exact: ``certify.exact.flip_distances`` (time limit per class program), bracket [lower, upper];
- bab: the ``bab`` certificate (budget per sample, relative bisection tolerance tol), bracket
  [lower (certified), upper (attained flip)].

Prints per sample both brackets and seconds, then the summary: on the samples where both finish (exact
proven optimal, bab bracket closed), whether bab's bracket contains exact's d* and its lower end is within
tol of it, and the total seconds of each (the wda++ attack's time is shared and reported apart).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _models import digits_mlp_32

from wdrobust.attacks import ATTACKS
from wdrobust.certify import CERTIFICATES
from wdrobust.certify.exact import flip_distances
from wdrobust.threat import ThreatModel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--budget", type=float, default=30.0, help="bab seconds per sample")
    parser.add_argument("--tol", type=float, default=1e-3, help="bab relative bracket width")
    parser.add_argument("--time-limit", type=float, default=10.0, help="exact seconds per class program")
    parser.add_argument("--skip-exact", action="store_true", help="bab only (profiling)")
    args = parser.parse_args()
    model, x, y = digits_mlp_32(args.n)

    start = time.perf_counter()
    upper = ATTACKS["wda++"](model, ThreatModel("linf", 0.1), seed=0).run(x, y).flip_distance
    attack_s = time.perf_counter() - start

    n = len(y)
    ex_lo, ex_hi, ex_ok, ex_s = np.zeros(n), np.zeros(n), np.zeros(n, bool), np.zeros(n)
    if not args.skip_exact:
        for i in range(n):
            f = flip_distances(
                model, x[i : i + 1], y[i : i + 1], "linf", upper=upper[i : i + 1], time_limit=args.time_limit
            )
            ex_lo[i], ex_hi[i], ex_ok[i], ex_s[i] = f.lower[0], f.upper[0], f.proven[0], f.seconds[0]
    cert = CERTIFICATES["bab"](
        model, "linf", losses=("zero_one",), budget=args.budget, tol=args.tol, batch_size=1
    )
    cert.run(x, y, upper=upper)
    b = cert.brackets
    assert b is not None

    print(f"wda++ attack (shared upper bounds): {attack_s:.1f} s for {n} samples")
    print("| i | exact [lower, upper] | proven | exact s | bab [lower, upper] | closed | domains | bab s |")
    print("|---|---|---|---|---|---|---|---|")
    for i in range(n):
        print(
            f"| {i} | [{ex_lo[i]:.5f}, {ex_hi[i]:.5f}] | {'yes' if ex_ok[i] else 'no'} | {ex_s[i]:.2f} "
            f"| [{b.lower[i]:.5f}, {b.upper[i]:.5f}] | {'yes' if b.proven[i] else 'no'} "
            f"| {int(b.domains[i])} | {b.seconds[i]:.2f} |"
        )
    both = ex_ok & b.proven
    inside = (b.lower <= ex_lo + 1e-9) & (ex_hi <= b.upper + 1e-9)
    close = ex_lo - b.lower <= args.tol * np.maximum(ex_hi, 1e-6) + 1e-9
    agree = both & inside & close
    print(
        f"\nboth finished: {int(both.sum())}/{n}; bab bracket contains exact d* within tol {args.tol:g}: "
        f"{int(agree.sum())}/{int(both.sum())}; bab proven {int(b.proven.sum())}/{n}, exact proven "
        f"{int(ex_ok.sum())}/{n}"
    )
    print(
        f"total seconds: exact {ex_s.sum():.1f}, bab {b.seconds.sum():.1f} (median per sample "
        f"{np.median(ex_s):.2f} vs {np.median(b.seconds):.2f})"
    )


if __name__ == "__main__":
    main()
