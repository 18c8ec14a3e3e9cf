"""Time the exact minimal flip distances (certify.exact.flip_distances) on a digits MLP.

    PYTHONPATH=src .venv/bin/python scripts/exact_timing.py [--n 100] [--time-limit 10] [--widths 32,32]
        [--bounds linear|box] [--norm linf|l1] [--no-attack]

Model: the bundled default digits MLP (models.default_model_path, hidden widths 128,64), or with
--widths an MLP of those hidden widths trained by train.fit with the default options (seed 0). First N
test samples; the search radii are the wda++ attack's flip distances (--no-attack: the whole box). Prints
the median seconds per correctly classified sample, the share proven optimal, and wda++ / exact.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from wdrobust import data, nets
from wdrobust.attacks import ATTACKS
from wdrobust.certify.exact import box_bounds, flip_distances, linear_bounds
from wdrobust.models import DEFAULT_TRAIN, default_model_path
from wdrobust.threat import ThreatModel
from wdrobust.train import fit

BOUNDS = {"linear": linear_bounds, "box": box_bounds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--time-limit", type=float, default=10.0)
    parser.add_argument("--widths", default=None, help="hidden widths, e.g. 32,32 (default: bundled MLP)")
    parser.add_argument("--bounds", choices=sorted(BOUNDS), default="linear")
    parser.add_argument("--norm", choices=["linf", "l1"], default="linf")
    parser.add_argument("--no-attack", action="store_true", help="search the whole box (upper=None)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.widths is None:
        model = nets.load(default_model_path(), device="cpu")
    else:
        widths = [int(w) for w in args.widths.split(",")]
        model = fit(arch_kwargs={"widths": widths}, device="cpu", **DEFAULT_TRAIN).model.eval()
    x, y = data.load("digits", "test", device="cpu")
    x, y = x[: args.n], y[: args.n]
    upper = None
    if not args.no_attack:
        upper = ATTACKS["wda++"](model, ThreatModel(args.norm, 0.1), seed=0).run(x, y).flip_distance
    flips = flip_distances(
        model, x, y, args.norm, upper=upper, time_limit=args.time_limit, bounds=BOUNDS[args.bounds]
    )
    with torch.no_grad():
        correct = (model(x).argmax(dim=1) == y).numpy()  # misclassified samples need no program
    sec, proven = flips.seconds[correct], flips.proven[correct]
    print(f"{args}\ncorrectly classified {int(correct.sum())}/{args.n}")
    print(f"s/sample: median {np.median(sec):.2f}, mean {sec.mean():.2f}, max {sec.max():.2f}")
    bracket = flips.lower[correct] / flips.upper[correct]  # 0 where no flip was found
    print(f"proven optimal: {proven.mean():.1%}; lower / upper: median {np.median(bracket):.4f}")
    if not proven.all():
        stopped = (flips.lower / flips.radius)[correct][~proven]
        print(f"time-limited samples: lower bound / search radius, median {np.median(stopped):.3f}")
    if upper is not None:
        ratio = upper[correct] / flips.upper[correct]
        print(f"wda++ flip distance / exact (proven samples): median {np.median(ratio[proven]):.3f}")


if __name__ == "__main__":
    main()
