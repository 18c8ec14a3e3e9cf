"""How tight is the sandwich? Sound certificates against the exact truth (MILP) and the attacks.

    .venv/bin/python scripts/tightness.py [--n 100] [--time-limit 10]   # ~10-20 minutes on 2 cores

Model: the digits MLP 64-32-32-10 (ReLU) trained by `wdrobust train --widths 32,32` (seed 0; trained when
runs/models/digits-mlp-32x32.safetensors is missing). First N test samples, linf, eps in EPS, p in PS.

- exact: minimal flip distances d_i* (certify.exact.flip_distances, searched inside the wda++ flip
  distance, time limit per class program), the share proven optimal and seconds per sample; the exact
  distributional robust accuracy (DRA) is the knapsack over d_i* (bracketed by the dual and primal sides
  where a program timed out); the exact max margin excess at p = inf (certify.exact.max_margins at eps).
- combined: the pointwise minimum of the sound majorants of local, cell and crown (largest certified
  radius for zero_one), as `wdrobust evaluate` reports it.
- attack: the best lower bound over wda, wda++ and apgd (attained points pooled per sample).
Prints markdown tables: DRA (certified / exact / attacked), margin UB / exact at p = inf, CE excess
UB / attack for every p.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from _models import digits_mlp_32

from wdrobust.attacks import ATTACKS, AttackResult
from wdrobust.certify import CERTIFICATES
from wdrobust.certify.exact import flip_distances, max_margins
from wdrobust.pipeline.aggregate import combine
from wdrobust.pipeline.records import CertificateRecord
from wdrobust.primal import AttainedPoints, CertifiedRadii, FlipDistances, lower_bound, upper_bound
from wdrobust.threat import ThreatModel

EPS = (0.01, 0.02, 0.05)
PS = (1.0, 2.0, math.inf)
SOUND = ("local", "cell", "crown")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--time-limit", type=float, default=10.0)
    args = parser.parse_args()
    model, x, y = digits_mlp_32(args.n)
    correct = (model(x).argmax(dim=1) == y).numpy()

    start = time.perf_counter()
    attack_flip = ATTACKS["wda++"](model, ThreatModel("linf", 0.1), seed=0).run(x, y).flip_distance
    exact = flip_distances(model, x, y, "linf", upper=attack_flip, time_limit=args.time_limit)
    proven = float(exact.proven[correct].mean())
    print(
        f"exact flip distances: {100 * proven:.0f} % of the {int(correct.sum())} correct samples proven "
        f"optimal, median {np.median(exact.seconds[correct]):.2f} s / sample "
        f"(total {time.perf_counter() - start:.0f} s, time limit {args.time_limit:g} s per class program)\n"
    )

    dra_rows, margin_rows, ce_rows, gaps = [], [], [], []
    for eps in EPS:
        certs = {
            name: CERTIFICATES[name](
                model,
                "linf",
                losses=("ce", "margin", "zero_one"),
                **CERTIFICATES[name].options_for("linf", eps, x[0].numel()),
            ).run(x, y)
            for name in SOUND
        }
        recs = [CertificateRecord.of(r) for r in certs.values()]
        comb = {loss: combine(recs, loss, correct) for loss in ("ce", "margin", "zero_one")}
        seconds = {n: r.seconds / args.n for n, r in certs.items()}
        exact_margin = max_margins(model, x, y, [eps], "linf", time_limit=args.time_limit)
        for p in PS:
            threat = ThreatModel("linf", eps, p)
            attacks: list[AttackResult] = [
                ATTACKS[name](model, threat, seed=0, losses=("ce", "margin", "zero_one")).run(x, y)
                for name in ("wda", "wda++", "apgd")
            ]
            lb = {loss: lower_bound(_pooled(attacks, loss), threat).value for loss in ("ce", "margin")}
            flips = np.min(np.stack([a.flips() for a in attacks]), axis=0)
            attacked = 1 - lower_bound(FlipDistances(flips, correct), threat).risk
            exact_lo = 1 - upper_bound(CertifiedRadii(exact.lower, correct), threat).risk
            exact_hi = 1 - lower_bound(FlipDistances(np.minimum(exact.upper, flips), correct), threat).risk
            certified = (
                1 - upper_bound(CertifiedRadii(comb["zero_one"].certified_radius, correct), threat).risk
            )
            gaps.append(100 * (exact_lo - certified))
            pname = "inf" if math.isinf(p) else f"{p:g}"
            exact_text = f"{100 * exact_lo:.1f}"
            if f"{100 * exact_hi:.1f}" != exact_text:  # timed-out programs: the bracket
                exact_text += f"-{100 * exact_hi:.1f}"
            dra_rows.append(
                f"| {eps:g} | {pname} | {100 * certified:.1f} | {exact_text} | {100 * attacked:.1f} |"
            )
            ub = {n: upper_bound(r.majorants["ce"], threat).value for n, r in certs.items()}
            ub["combined"] = upper_bound(comb["ce"].majorants["ce"], threat).value
            cells = " | ".join(f"{ub[n] / lb['ce']:.2f}" for n in (*SOUND, "combined"))
            ce_rows.append(f"| {eps:g} | {pname} | {lb['ce']:.4f} | {ub['combined']:.4f} | {cells} |")
            if math.isinf(p):
                others = np.where(
                    np.eye(exact_margin.upper.shape[1], dtype=bool)[y.numpy()],
                    -np.inf,
                    exact_margin.upper[:, :, 0],
                )
                truth = float(np.mean(others.max(axis=1) - certs["crown"].clean_loss["margin"]))
                comb_m = upper_bound(comb["margin"].majorants["margin"], threat).value
                margin_rows.append(
                    f"| {eps:g} | {truth:.4f} | {lb['margin']:.4f} | {comb_m:.4f} | {comb_m / truth:.2f} | "
                    + " | ".join(f"{seconds[n]:.3f}" for n in SOUND)
                    + " |"
                )
    print("Distributional robust accuracy (%): certified (combined) / exact (MILP) / attacked\n")
    print("| eps | p | certified | exact | attacked |\n|---|---|---|---|---|")
    print("\n".join(dra_rows))
    print(f"\ncertified below exact: mean {np.mean(gaps):.1f} points, max {np.max(gaps):.1f}\n")
    print("Margin excess at p = inf: exact (MILP) / attack / combined UB; seconds per sample\n")
    print("| eps | exact | attack | combined UB | UB / exact | " + " | ".join(f"{n} s" for n in SOUND) + " |")
    print("|---|---|---|---|---|" + "---|" * len(SOUND))
    print("\n".join(margin_rows))
    print("\nCE excess R(eps) - R(0): attack LB, combined UB, and UB / attack per certificate\n")
    print("| eps | p | attack | combined | " + " | ".join(SOUND) + " | combined |")
    print("|---|---|---|---|" + "---|" * (len(SOUND) + 1))
    print("\n".join(ce_rows))


def _pooled(attacks: list[AttackResult], loss: str) -> AttainedPoints:
    """The attained points of several attacks on the same samples, side by side."""
    parts = [a.attained(loss) for a in attacks]
    return AttainedPoints(
        np.concatenate([p.t for p in parts], axis=1), np.concatenate([p.g for p in parts], axis=1)
    )


if __name__ == "__main__":
    main()
