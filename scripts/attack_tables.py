"""Regenerate the attack tables of docs/attacks.md (digits MLPs, CPU, about 5 minutes on 2 cores).

    .venv/bin/python scripts/attack_tables.py            # prints markdown, writes runs/attack_tables.md

The two models are trained with the CLI when missing:
    wdrobust train --out runs/models/digits-mlp.safetensors
    wdrobust train --adversarial pgd --eps 0.1 --out runs/models/digits-mlp-pgd.safetensors
"""

from __future__ import annotations

import logging
import math
import subprocess
import sys
from pathlib import Path

import torch

from wdrobust import data, nets
from wdrobust.attacks import ATTACKS
from wdrobust.attacks.summary import summarize
from wdrobust.threat import ThreatModel

MODELS = {
    "standard": (Path("runs/models/digits-mlp.safetensors"), []),
    "PGD-trained (linf 0.1)": (
        Path("runs/models/digits-mlp-pgd.safetensors"),
        ["--adversarial", "pgd", "--eps", "0.1"],
    ),
}
POINTWISE = ("pgd", "apgd", "a3", "a3-wda", "wda", "autoattack")
EPS = (0.1, 0.2)
DIST_EPS = (0.05, 0.1)


def model(path: Path, train_args: list[str]) -> torch.nn.Module:
    """Load the checkpoint, training it with ``wdrobust train`` first when it is missing."""
    if not path.exists():
        cli = [str(Path(sys.executable).parent / "wdrobust"), "train", "--out", str(path), "-q", *train_args]
        subprocess.run(cli, check=True)
    return nets.load(path, device="cpu")


def pointwise_table(x: torch.Tensor, y: torch.Tensor) -> list[str]:
    """Robust accuracy (%) and forward passes per sample of each attack, linf, at each eps."""
    head = (
        "| model | attack | " + " | ".join(f"eps {e}: robust acc. | fwd passes / sample" for e in EPS) + " |"
    )
    lines = [head, "|" + "---|" * (2 + 2 * len(EPS))]
    for label, (path, args) in MODELS.items():
        net = model(path, args)
        for name in POINTWISE:
            cells = []
            for eps in EPS:
                r = ATTACKS[name](net, ThreatModel("linf", eps), device="cpu").run(x, y)
                cells += [f"{100 * r.robust_accuracy():.2f}", f"{r.forward_passes / len(y):.0f}"]
            lines.append(f"| {label} | {name} | " + " | ".join(cells) + " |")
            print(lines[-1], flush=True)
    return lines


def distributional_table(x: torch.Tensor, y: torch.Tensor) -> list[str]:
    """Distributional robust accuracy (%) and expected CE, p in {1, 2, inf}, each linf eps in DIST_EPS."""
    ps = (1.0, 2.0, math.inf)
    cols = " | ".join(f"p={p:g}: dist. acc. | E_Q CE" for p in ps)
    lines = [f"| model | eps | attack | {cols} |", "|" + "---|" * (3 + 2 * len(ps))]
    for label, (path, args) in MODELS.items():
        net = model(path, args)
        for eps in DIST_EPS:
            for name in ("wda", "wda++"):
                cells = []
                for p in ps:
                    s = summarize(ATTACKS[name](net, ThreatModel("linf", eps, p), device="cpu").run(x, y))
                    cells += [f"{100 * s.distributional_accuracy:.2f}", f"{s.expected_ce:.3f}"]
                lines.append(f"| {label} | {eps} | {name} | " + " | ".join(cells) + " |")
                print(lines[-1], flush=True)
    return lines


def main() -> None:
    """Print both tables and write them to runs/attack_tables.md."""
    logging.getLogger("auto-attack").setLevel(logging.ERROR)
    x, y = data.load("digits", "test", device="cpu")
    out = [f"Digits test split (N = {len(y)}), linf.", "", *pointwise_table(x, y), ""]
    out += ["Distributional threat (linf cost, W_p ball):", "", *distributional_table(x, y)]
    Path("runs").mkdir(exist_ok=True)
    Path("runs/attack_tables.md").write_text("\n".join(out) + "\n")
    print("\n".join(out))


if __name__ == "__main__":
    main()
