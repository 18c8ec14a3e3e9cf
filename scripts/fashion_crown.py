"""Certificates on a real Fashion-MNIST CNN: crown against local and the attack (linf, p = inf).

    apt-get install dataset-fashion-mnist        # the standard idx files, as root
    .venv/bin/python scripts/fashion_crown.py [--root /usr/share/datasets/fashion-mnist] [--n 20]

Trains (when missing) the CNN with the CLI,
    wdrobust train --data mnist --root ROOT --arch cnn --widths 16,32 --hidden 100 --epochs 4 \
        --batch-size 128 --out runs/models/fashion-cnn-16x32.safetensors
(~75 s on 2 cores, ~89.5 % clean test accuracy), then for eps in {0.01, 2/255} on the first N test
samples: the CE excess R(eps) - R(0) of APGD-CE (attained, a lower bound), of ``crown`` (full CROWN
intermediate bounds, radii [eps], no bisection: p = inf only reads the ball of radius eps) and of
``local``; their ratios; certified accuracy (crown) against the attack's robust accuracy; seconds per
sample. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import time
from pathlib import Path

import torch

from wdrobust import data, nets
from wdrobust.attacks import ATTACKS
from wdrobust.certify import CERTIFICATES
from wdrobust.primal import lower_bound
from wdrobust.threat import ThreatModel

MODEL = Path("runs/models/fashion-cnn-16x32.safetensors")
TRAIN = ["--arch", "cnn", "--widths", "16,32", "--hidden", "100", "--epochs", "4", "--batch-size", "128"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--n", type=int, default=20)
    args = parser.parse_args()
    if not MODEL.exists():
        cli = Path(sys.executable).with_name("wdrobust")
        cmd = [
            str(cli),
            "train",
            "--data",
            "mnist",
            "--root",
            args.root,
            *TRAIN,
            "--out",
            str(MODEL),
            "--quiet",
        ]
        subprocess.run(cmd, check=True)
    torch.set_num_threads(2)
    model = nets.load(MODEL, device="cpu").eval()
    x, y = data.load("mnist", "test", root=args.root)
    x, y = x[: args.n], y[: args.n]
    print(f"model {MODEL} on the first {args.n} Fashion-MNIST test images (linf, p = inf)\n")
    print(
        "| eps | clean acc | APGD CE excess | crown CE excess | local CE excess | crown / APGD | local / APGD"
        " | certified acc (crown) | attacked acc | crown s/sample |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for eps, text in ((0.01, "0.01"), (2 / 255, "2/255")):
        threat = ThreatModel("linf", eps, math.inf)
        attacked = ATTACKS["apgd"](model, threat, seed=0).run(x, y)
        lb = lower_bound(attacked.attained("ce"), threat).value
        attacked_acc = attacked.robust_accuracy()
        start = time.perf_counter()
        crown = CERTIFICATES["crown"](
            model,
            "linf",
            losses=("ce", "zero_one"),
            radii=[eps],
            intermediate="crown",
            bisection=0,
            lipschitz=False,
            subdivide=1,
            batch_size=5,
        ).run(x, y)
        seconds = (time.perf_counter() - start) / args.n
        around = CERTIFICATES["local"].options_for("linf", eps, x[0].numel())
        local = CERTIFICATES["local"](model, "linf", losses=("ce",), **around).run(x, y)
        ub = crown.upper_bound("ce", threat).value
        ub_local = local.upper_bound("ce", threat).value
        cert = 1 - crown.upper_bound("zero_one", threat).risk
        print(
            f"| {text} | {crown.clean_correct.mean():.2f} | {lb:.3f} | {ub:.3f} | {ub_local:.3g}"
            f" | {ub / lb:.1f}x | {ub_local / lb:.3g}x | {cert:.2f} | {attacked_acc:.2f}"
            f" | {seconds:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
