"""Time the exact minimal flip distances on the default digits MLP (64-32-32-10), linf.

    PYTHONPATH=src .venv/bin/python scripts/exact_timing.py [--n 100] [--time-limit 10] [--no-attack]

First N test samples; the search radii are the flip distances of the wda++ attack (or diam X with
--no-attack). Prints the median seconds per sample, the share proven optimal, and how close the attack's
flip distances are to the exact ones.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from wdrobust import data, nets
from wdrobust.attacks import ATTACKS
from wdrobust.certify.exact import flip_distances
from wdrobust.threat import ThreatModel
from wdrobust.train import ensure_default_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--time-limit", type=float, default=10.0)
    parser.add_argument("--no-attack", action="store_true", help="search the whole box (upper=None)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = nets.load(ensure_default_model(device="cpu"), device="cpu")
    x, y = data.load("digits", "test", device="cpu")
    x, y = x[: args.n], y[: args.n]
    upper = None
    if not args.no_attack:
        attack = ATTACKS["wda++"](model, ThreatModel("linf", 0.1), seed=0).run(x, y)
        upper = attack.flip_distance
    flips = flip_distances(model, x, y, "linf", upper=upper, time_limit=args.time_limit)
    with torch.no_grad():
        solved = (model(x).argmax(dim=1) == y).numpy()  # misclassified samples need no program
    print(
        f"samples {args.n}, correctly classified {int(solved.sum())}, time limit {args.time_limit:g} s/program"
    )
    print(
        f"median s/sample (correct samples) {np.median(flips.seconds[solved]):.2f}, "
        f"mean {flips.seconds[solved].mean():.2f}, max {flips.seconds.max():.2f}"
    )
    print(f"proven optimal {flips.proven[solved].mean():.1%} of the correct samples")
    if upper is not None:
        ratio = upper[solved] / np.maximum(flips.lower[solved], 1e-12)
        print(
            f"wda++ flip distance / exact lower bound: median {np.median(ratio):.3f}, max {ratio.max():.3f}"
        )


if __name__ == "__main__":
    main()
