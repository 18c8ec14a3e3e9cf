"""Certified accuracy of vit_tiny (depth 2) on digits by CROWN margin bounds, linf.

    PYTHONPATH=src .venv/bin/python scripts/vit_certified.py --n 100 --eps 0.005,0.01 [--intermediate auto]
        [--alpha-steps 20] [--threads 1]

For each eps: the first n test samples, the margins z_j - z_y (j != y) bounded from above by
``crown.margin_bounds`` over B_inf(x, eps) cap [0, 1]^d (float64); a sample is certified when every
bound is < 0 (with --alpha-steps: the bounds optimised by alpha-CROWN in its output mode, the
activations' slopes and the relaxation parameters of the attention products). Prints the certified
count, the median of the largest margin bound and seconds per sample, in batches of BATCH samples (the
model of scripts/transformer_tables.py, trained when missing).
"""

from __future__ import annotations

import argparse
import time

import torch
from vit_widths import digits_case

from wdrobust.certify.bounds import BoundGraph
from wdrobust.certify.bounds.propagation import INTERMEDIATE, margin_bounds

BATCH = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--eps", default="0.005,0.01")
    parser.add_argument("--intermediate", choices=INTERMEDIATE, default="auto")
    parser.add_argument("--alpha-steps", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for eps in (float(e) for e in args.eps.split(",")):
        model, region, spec = digits_case(eps, args.n)
        graph = BoundGraph(model)
        start, worst = time.perf_counter(), []
        for b in range(0, args.n, BATCH):
            rows = torch.arange(b, min(args.n, b + BATCH))
            with torch.no_grad():
                up = margin_bounds(
                    graph,
                    region[rows],
                    spec[rows],
                    intermediate=args.intermediate,
                    alpha_steps=args.alpha_steps,
                    alpha_stop=0.0,
                )[0]
            worst.append(up.amax(dim=1))
            print(
                f"  eps {eps:g}: {b + rows.numel()} done, {int((torch.cat(worst) < 0).sum())} certified",
                flush=True,
            )
        w = torch.cat(worst)
        secs = (time.perf_counter() - start) / args.n
        print(
            f"eps {eps:g} ({args.intermediate}, alpha {args.alpha_steps}): certified "
            f"{int((w < 0).sum())}/{args.n}, median largest margin bound {float(w.median()):.3g}, "
            f"{secs:.1f} s/sample",
            flush=True,
        )


if __name__ == "__main__":
    main()
