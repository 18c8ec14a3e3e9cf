"""Regenerate the attack tables of docs/attacks.md (digits MLPs, CPU, about 10 minutes on 2 cores).

    .venv/bin/python scripts/attack_tables.py            # prints markdown, writes runs/attack_tables.md
    .venv/bin/python scripts/attack_tables.py distributional whole-box    # only these tables

The two models are trained with the CLI when missing:
    wdrobust train --out runs/models/digits-mlp.safetensors
    wdrobust train --adversarial pgd --eps 0.1 --out runs/models/digits-mlp-pgd.safetensors
"""

from __future__ import annotations

import logging
import math
import sys
from pathlib import Path

import torch
from _models import ensure_trained

from wdrobust import data, nets
from wdrobust.attacks import ATTACKS, AttackResult
from wdrobust.attacks.base import union
from wdrobust.certify.crown import CrownCertificate
from wdrobust.pipeline.bounds import summarize, worst_distribution
from wdrobust.primal import lower_bound
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
    return nets.load(ensure_trained(path, train_args), device="cpu")


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


DISTRIBUTIONAL = ("w-pgd", "wda", "wda++")


def audited(result: AttackResult, x: torch.Tensor, y: torch.Tensor) -> bool:
    """True when the worst distributions of zero_one and ce over the result's points pass their W_p audit
    (``worst_distribution`` raises otherwise)."""
    return all(worst_distribution(result, loss, x, y).audit() for loss in ("zero_one", "ce"))


def distributional_table(x: torch.Tensor, y: torch.Tensor) -> list[str]:
    """Distributional robust accuracy (%) and expected CE, p in {1, 2, inf}, each linf eps in DIST_EPS, for
    w-pgd, wda, wda++ and the best of all (their candidates pooled); every distribution audited."""
    ps = (1.0, 2.0, math.inf)
    cols = " | ".join(f"p={p:g}: dist. acc. | E_Q CE" for p in ps)
    lines = [f"| model | eps | attack | {cols} | audits |", "|" + "---|" * (4 + 2 * len(ps))]
    for label, (path, args) in MODELS.items():
        net = model(path, args)
        for eps in DIST_EPS:
            cells: dict[str, list[str]] = {name: [] for name in (*DISTRIBUTIONAL, "best of all")}
            audits: dict[str, bool] = dict.fromkeys(cells, True)
            for p in ps:
                threat = ThreatModel("linf", eps, p)
                runs = {
                    n: ATTACKS[n](net, threat, device="cpu", keep_points=True).run(x, y)
                    for n in DISTRIBUTIONAL
                }
                runs["best of all"] = union(list(runs.values()))
                for name, result in runs.items():
                    s = summarize(result)
                    cells[name] += [f"{100 * s.distributional_accuracy:.2f}", f"{s.expected_ce:.3f}"]
                    audits[name] &= audited(result, x, y)
            for name, row in cells.items():
                audit = "pass" if audits[name] else "FAIL"
                lines.append(f"| {label} | {eps} | {name} | " + " | ".join(row) + f" | {audit} |")
                print(lines[-1], flush=True)
    return lines


def box_maxima(result: AttackResult, y: torch.Tensor, loss: str, classes: int) -> torch.Tensor:
    """(K,) the largest loss value attained at any candidate of any sample of each label: a point of the
    box, so a lower bound on max_{x in X} l(x, c)."""
    value = torch.as_tensor(result.gains[loss] + result.clean_loss[loss][:, None])
    value = torch.where(torch.as_tensor(result.t).isfinite(), value, -math.inf).amax(1)
    return torch.stack([value[y == c].max() for c in range(classes)])


def crown_box_bounds(net: torch.nn.Module, x: torch.Tensor, classes: int) -> dict[str, torch.Tensor]:
    """Sound (K,) upper bounds of max_{x in X} of the margin and CE losses per label, from the crown
    certificate's whole-box margin bounds U_cj >= max_{x in X} z_j - z_c: margin <= max_j U_cj,
    CE = log(1 + sum_j exp m_j) <= log(1 + sum_j exp U_cj) (float64; its float32 slack of ~1e-6 omitted)."""
    cert = CrownCertificate(net, "linf", device="cpu")
    _, upper, _, _ = cert._whole_box(classes, x.double())  # computed once per class by the certificate
    zero = torch.zeros(classes, 1, dtype=upper.dtype)
    return {"margin": upper.amax(1), "ce": torch.logsumexp(torch.cat([zero, upper], 1), 1)}


def whole_box_table(x: torch.Tensor, y: torch.Tensor) -> list[str]:
    """p = 1: WDA's lower bounds on the CE and margin risks without (whole_box=0) and with the whole-box
    search; per label the largest loss attained in the box, against crown's sound whole-box bound, and
    the share of that gap the search closes (mean over labels)."""
    lines = [
        "| model | eps | loss | LB R_1 before | LB R_1 after | box max attained before (mean over labels) "
        "| after | sound whole-box bound (crown) | share of the gap closed |",
        "|" + "---|" * 9,
    ]
    for label, (path, args) in MODELS.items():
        net = model(path, args)
        classes = int(y.max()) + 1
        bound = crown_box_bounds(net, x, classes)
        for eps in DIST_EPS:
            threat = ThreatModel("linf", eps, 1)
            runs = {
                "before": ATTACKS["wda"](net, threat, device="cpu", whole_box=0).run(x, y),
                "after": ATTACKS["wda"](net, threat, device="cpu").run(x, y),
            }
            for loss in ("ce", "margin"):
                lb = {
                    k: lower_bound(r.attained(loss), threat, r.clean_loss[loss]).risk for k, r in runs.items()
                }
                box = {k: box_maxima(r, y, loss, classes).double() for k, r in runs.items()}
                closed = ((box["after"] - box["before"]) / (bound[loss] - box["before"])).mean()
                lines.append(
                    f"| {label} | {eps} | {loss} | {lb['before']:.3f} | {lb['after']:.3f} | "
                    f"{box['before'].mean():.2f} | {box['after'].mean():.2f} | {bound[loss].mean():.2f} | "
                    f"{100 * closed:.1f} % |"
                )
                print(lines[-1], flush=True)
    return lines


TABLES = {
    "pointwise": ("Point-wise robust accuracy (%), linf:", pointwise_table),
    "distributional": ("Distributional threat (linf cost, W_p ball):", distributional_table),
    "whole-box": ("Whole-box search, p = 1:", whole_box_table),
}


def main(names: list[str]) -> None:
    """Print the chosen tables (default all) and write them to runs/attack_tables.md."""
    logging.getLogger("auto-attack").setLevel(logging.ERROR)
    torch.set_num_threads(1)
    x, y = data.load("digits", "test", device="cpu")
    out = [f"Digits test split (N = {len(y)}), linf.", ""]
    for name in names or list(TABLES):
        title, table = TABLES[name]
        out += [title, "", *table(x, y), ""]
    Path("runs").mkdir(exist_ok=True)
    Path("runs/attack_tables.md").write_text("\n".join(out) + "\n")
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1:])
