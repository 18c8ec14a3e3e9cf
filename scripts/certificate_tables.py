"""Regenerate the certificate tables of docs/certificates.md (digits MLPs 64-32-32-10, CPU, 2 cores).

    .venv/bin/python scripts/certificate_tables.py       # prints markdown, writes runs/certificate_tables.md

The two models are trained with the CLI when missing (widths 32,32 so that the milp certificate finishes):
    wdrobust train --widths 32,32 --out runs/models/digits-mlp-32x32.safetensors
    wdrobust train --widths 32,32 --adversarial pgd --eps 0.1 \
        --out runs/models/digits-mlp-32x32-pgd.safetensors

For each model, linf threat, eps in EPS and p in {1, 2, inf}, on the first N test samples: the CE risk
upper bound R(0) + value from every certificate (primal.upper_bound of its majorants), the best attack
lower bound (WDA and WDA++ candidates through primal.lower_bound), the gap UB / LB of the best sound
certificate, and distributional robust accuracy: certified (knapsack over certified radii, best sound
certificate) versus attacked (knapsack over the attacks' flip distances). Certificates do not depend on
p, so they run once per eps; attacks run per (eps, p).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from _models import ensure_trained

from wdrobust import data, nets
from wdrobust.attacks import ATTACKS
from wdrobust.certify import CERTIFICATES
from wdrobust.certify.exact import flip_distances
from wdrobust.pipeline.aggregate import combine
from wdrobust.pipeline.bounds import summarize
from wdrobust.pipeline.records import CertificateRecord
from wdrobust.primal import CertifiedRadii, FlipDistances, lower_bound, upper_bound
from wdrobust.threat import ThreatModel

MODELS = {
    "standard": (Path("runs/models/digits-mlp-32x32.safetensors"), []),
    "PGD-trained (linf 0.1)": (
        Path("runs/models/digits-mlp-32x32-pgd.safetensors"),
        ["--adversarial", "pgd", "--eps", "0.1"],
    ),
}
N = 40
EPS = (0.01, 0.03)
PS = (1.0, 2.0, math.inf)
SOUND = ("global", "local", "cell", "milp", "crown")
ESTIMATES = ("first-order", "empirical")
OPTIONS = {"milp": {"time_limit": 3.0}}
#: Seconds per class program of the exact flip distances (the exact-truth column).
EXACT_LIMIT = 10.0
OUT = Path("runs/certificate_tables.md")


def certify(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float) -> dict:
    """Every certificate (sound ones, radius, estimates) at linf eps; {name: CertificateResult}. The
    empirical estimate visits the points of a WDA run at (linf, eps, p = inf)."""
    threat = ThreatModel("linf", eps, "inf")
    visited = ATTACKS["wda"](model, threat, device="cpu", keep_points=True).run(x, y).points
    out = {}
    for name in (*SOUND, "radius", *ESTIMATES):
        cls = CERTIFICATES[name]
        around = cls.options_for("linf", eps, x[0].numel())  # shell radii around eps (milp: milp_radius)
        cert = cls(model, "linf", losses=("ce", "zero_one"), device="cpu", **around | OPTIONS.get(name, {}))
        out[name] = cert.run(x, y, visited=visited) if name == "empirical" else cert.run(x, y)
    recs = [CertificateRecord.of(out[n]) for n in (*SOUND, "radius")]
    out["combined"] = {loss: combine(recs, loss, out["radius"].clean_correct) for loss in ("ce", "zero_one")}
    return out


def attack(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel
) -> tuple[float, float]:
    """(best CE risk lower bound, lowest attacked distributional robust accuracy) over WDA and WDA++."""
    lb, acc = -math.inf, math.inf
    for name in ("wda", "wda++"):
        result = ATTACKS[name](model, threat, losses=("ce", "zero_one"), device="cpu").run(x, y)
        acc = min(acc, summarize(result).distributional_accuracy)
        if "ce" in result.gains:
            lb = max(lb, lower_bound(result.attained("ce"), threat, clean=result.clean_loss["ce"]).risk)
    return lb, acc


def model_table(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor
) -> tuple[list[str], dict[str, float]]:
    """Markdown rows for one model and the seconds each certificate took (summed over eps)."""
    cols = [*SOUND, "combined", *ESTIMATES]
    heads = [*SOUND, "combined", *(f"{name} (est.)" for name in ESTIMATES)]
    rows = [
        "| p | eps | clean CE | "
        + " | ".join(heads)
        + " | best attack LB | UB/LB | certified DRA | exact DRA | attacked DRA |",
        "|---|---|---|" + "---|" * len(cols) + "---|---|---|---|---|",
    ]
    seconds = dict.fromkeys([*SOUND, "radius", *ESTIMATES, "exact"], 0.0)
    correct = (model(x).argmax(dim=1) == y).numpy()
    upper = ATTACKS["wda++"](model, ThreatModel("linf", 0.1), device="cpu").run(x, y).flip_distance
    exact = flip_distances(model, x, y, "linf", upper=upper, time_limit=EXACT_LIMIT)
    seconds["exact"] = float(exact.seconds.sum())
    for eps in EPS:
        results = certify(model, x, y, eps)
        combined = results.pop("combined")
        for name, res in results.items():
            seconds[name] += res.seconds
        for p in PS:
            threat = ThreatModel("linf", eps, p)
            ub = {name: results[name].upper_bound("ce", threat).risk for name in cols if name in results}
            clean_ce = results["global"].clean_loss["ce"]
            ub["combined"] = upper_bound(combined["ce"].majorants["ce"], threat, clean=clean_ce).risk
            dra = 1 - upper_bound(CertifiedRadii(combined["zero_one"].certified_radius, correct), threat).risk
            lb, attacked = attack(model, x, y, threat)
            best = ub["combined"]
            lo = 1 - upper_bound(CertifiedRadii(exact.lower, correct), threat).risk
            hi = 1 - lower_bound(FlipDistances(exact.upper, correct), threat).risk
            truth = (
                f"{100 * lo:.1f} %"
                if f"{100 * hi:.1f}" == f"{100 * lo:.1f}"
                else f"{100 * lo:.1f}-{100 * hi:.1f} %"
            )
            clean = float(results["global"].clean_loss["ce"].mean())
            pname = "inf" if math.isinf(p) else f"{p:g}"
            cells = " | ".join(f"{ub[name]:.3f}" for name in cols)
            rows.append(
                f"| {pname} | {eps:g} | {clean:.3f} | {cells} | {lb:.3f} | {best / lb:.2f} | "
                f"{100 * dra:.1f} % | {truth} | {100 * attacked:.1f} % |"
            )
    return rows, seconds


def main() -> None:
    torch.set_num_threads(1)
    x, y = data.load("digits", "test", device="cpu")
    x, y = x[:N], y[:N]
    lines = [
        f"Digits test split, first {N} samples, linf threat; CE risk bounds R_p(eps) (lower is tighter).",
        "",
    ]
    names = [*SOUND, "radius", *ESTIMATES, "exact"]
    timing = ["| model | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for label, (path, extra) in MODELS.items():
        ensure_trained(path, ["--widths", "32,32", *extra])
        model = nets.load(path, device="cpu")
        rows, seconds = model_table(model, x, y)
        lines += [f"#### {label}", "", *rows, ""]
        timing.append(f"| {label} | " + " | ".join(f"{seconds[n]:.1f}" for n in names) + " |")
    lines += [
        f"Certificate seconds for {N} samples (summed over the two eps; exact: its flip distances once):",
        "",
        *timing,
        "",
    ]
    text = "\n".join(lines)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
