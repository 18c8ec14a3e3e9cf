"""Regenerate the transformer / smooth-network table of docs/certificates.md (digits, CPU).

    .venv/bin/python scripts/transformer_tables.py     # prints markdown, writes runs/transformer_tables.md

Models (trained with the CLI when missing):
    wdrobust train --arch vit_tiny --depth 2 --epochs 30 --out runs/models/digits-vit-tiny-d2.safetensors
    wdrobust train --widths 32,32 --activation gelu --out runs/models/digits-mlp-gelu-32x32.safetensors

For each model, linf threat, eps in EPS and p in {1, 2, inf}, on the first N[model] test samples: the CE
risk upper bound R(0) + value of the sound certificates local, crown and their per-sample minimum
(combined), the estimates first-order and empirical (empirical visits the points of a WDA run at p = inf),
the best attack lower bound (WDA and WDA++ through primal.lower_bound), UB/LB of combined, and the
seconds per sample of each certificate. Certificates do not depend on p, so they run once per eps.
The ViT uses a reduced crown radius grid (CROWN_VIT) to keep the run within minutes on two cores.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from _models import ensure_trained

from wdrobust import data, nets
from wdrobust.attacks import ATTACKS
from wdrobust.certify import CERTIFICATES, default_radii
from wdrobust.pipeline.aggregate import combine
from wdrobust.pipeline.records import CertificateRecord
from wdrobust.primal import lower_bound, upper_bound
from wdrobust.threat import ThreatModel

MODELS = {
    "vit_tiny (depth 2)": (
        Path("runs/models/digits-vit-tiny-d2.safetensors"),
        ["--arch", "vit_tiny", "--depth", "2", "--epochs", "30"],
    ),
    "GELU MLP 64-32-32-10": (
        Path("runs/models/digits-mlp-gelu-32x32.safetensors"),
        ["--widths", "32,32", "--activation", "gelu"],
    ),
}
N = {"vit_tiny (depth 2)": 8, "GELU MLP 64-32-32-10": 40}
EPS = (0.005, 0.01)
PS = (1.0, 2.0, math.inf)
SOUND = ("local", "crown")
ESTIMATES = ("first-order", "empirical")
#: crown options for the ViT: no subdivision, 2 bisection steps (and 4 shells around eps: ``VIT_SHELLS``).
CROWN_VIT = {"subdivide": 1, "bisection": 2}
VIT_SHELLS = 4
OUT = Path("runs/transformer_tables.md")


def certify(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, vit: bool) -> dict:
    """{name: CertificateResult} of every certificate at linf eps, and "combined" (local and crown)."""
    threat = ThreatModel("linf", eps, "inf")
    visited = ATTACKS["wda"](model, threat, device="cpu", keep_points=True).run(x, y).points
    out = {}
    for name in (*SOUND, *ESTIMATES):
        cls, d = CERTIFICATES[name], x[0].numel()
        opts = cls.options_for("linf", eps, d)  # the shell radii around eps
        if vit and name == "crown":
            opts = {**CROWN_VIT, "radii": default_radii("linf", eps, d, VIT_SHELLS)}
        cert = cls(model, "linf", losses=("ce",), device="cpu", **opts)
        out[name] = cert.run(x, y, visited=visited) if name == "empirical" else cert.run(x, y)
    out["combined"] = combine(
        [CertificateRecord.of(out[n]) for n in SOUND], "ce", out[SOUND[0]].clean_correct
    )
    return out


def best_attack(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel) -> float:
    """The best CE risk lower bound over WDA and WDA++."""
    lb = -math.inf
    for name in ("wda", "wda++"):
        result = ATTACKS[name](model, threat, losses=("ce",), device="cpu").run(x, y)
        if "ce" in result.gains:
            lb = max(lb, lower_bound(result.attained("ce"), threat, clean=result.clean_loss["ce"]).risk)
    return lb


def model_rows(label: str, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[str]:
    """Markdown rows of one model."""
    cols = [*SOUND, "combined", *ESTIMATES]
    rows = []
    for eps in EPS:
        results = certify(model, x, y, eps, vit="vit" in label)
        combined = results.pop("combined")
        secs = " / ".join(f"{results[n].seconds / len(x):.2f}" for n in SOUND)
        for p in PS:
            threat = ThreatModel("linf", eps, p)
            clean = results["local"].clean_loss["ce"]
            ub = {n: results[n].upper_bound("ce", threat).risk for n in (*SOUND, *ESTIMATES)}
            ub["combined"] = upper_bound(combined.majorants["ce"], threat, clean=clean).risk
            lb = best_attack(model, x, y, threat)
            pname = "inf" if math.isinf(p) else f"{p:g}"
            cells = " | ".join(f"{ub[n]:.4g}" for n in cols)
            rows.append(
                f"| {label} | {pname} | {eps:g} | {float(clean.mean()):.3f} | {cells} | {lb:.3f} | "
                f"{ub['combined'] / lb:.3g} | {secs} |"
            )
    return rows


def main() -> None:
    torch.set_num_threads(2)
    x_all, y_all = data.load("digits", "test", device="cpu")
    heads = ["local", "crown", "combined", "first-order (est.)", "empirical (est.)"]
    lines = [
        "Digits test split, linf threat; CE risk bounds R_p(eps) (lower is tighter); samples: "
        + ", ".join(f"{k}: first {v}" for k, v in N.items())
        + ". s/sample: local / crown.",
        "",
        "| model | p | eps | clean CE | " + " | ".join(heads) + " | best attack LB | UB/LB | s/sample |",
        "|---|---|---|---|" + "---|" * len(heads) + "---|---|---|",
    ]
    for label, (path, extra) in MODELS.items():
        ensure_trained(path, extra)
        model = nets.load(path, device="cpu")
        n = N[label]
        lines += model_rows(label, model, x_all[:n], y_all[:n])
    text = "\n".join([*lines, ""])
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
