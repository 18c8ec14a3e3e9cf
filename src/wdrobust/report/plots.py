"""Plots of a run (matplotlib, Agg backend), each saved atomically as PNG under ``plots/``.

- ``risk_vs_eps_<loss>.png``: per p, the risk against eps: the best attained lower bound, every
  certificate's upper bound (solid: sound, dashed: estimate) and the band [lower, best sound upper];
  eps = 0 is the clean risk.
- ``radii.png``: distributions of the attacks' best flip distances and of each certificate's certified
  radii (zero_one), finite values only.
- ``lipschitz.png``: histograms of each certificate's per-sample local Lipschitz constants (log scale).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from wdrobust.evaluate.aggregate import Records, best_flip_distances
from wdrobust.report.io import atomic_write


def _save(fig: plt.Figure, path: Path) -> str:
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    plt.close(fig)
    return path.name


def _series(results: dict[str, Any], loss: str, p: Any) -> dict[str, Any]:
    """eps grid (with 0) and the lower / per-certificate upper values for one (loss, p)."""
    rows = [tm for tm in results["threat_models"] if tm["p"] == p and loss in tm["losses"]]
    rows.sort(key=lambda tm: tm["eps"])
    clean = rows[0]["losses"][loss]["clean"]
    eps = [0.0] + [tm["eps"] for tm in rows]
    entries = [tm["losses"][loss] for tm in rows]
    lower = [clean] + [np.nan if e["lower"]["best"] is None else e["lower"]["best"]["value"] for e in entries]
    certs = list(dict.fromkeys(k for e in entries for k in e["upper"]))
    upper = {c: [clean] + [e["upper"].get(c, {}).get("value", np.nan) for e in entries] for c in certs}
    sound = {c: all(e["upper"].get(c, {}).get("sound", False) for e in entries) for c in certs}
    best = [clean] + [
        np.nan if e["best_sound_upper"] is None else e["best_sound_upper"]["value"] for e in entries
    ]
    return {"eps": eps, "lower": lower, "upper": upper, "sound": sound, "best": best}


def risk_plot(results: dict[str, Any], loss: str, path: Path) -> str:
    """Risk versus eps for one loss, one panel per p."""
    ps = list(dict.fromkeys(tm["p"] for tm in results["threat_models"]))
    fig, axes = plt.subplots(1, len(ps), figsize=(4.2 * len(ps), 3.6), squeeze=False, sharey=True)
    finite = []
    for ax, p in zip(axes[0], ps, strict=True):
        s = _series(results, loss, p)
        ax.fill_between(s["eps"], s["lower"], s["best"], color="tab:blue", alpha=0.15, label="band")
        ax.plot(s["eps"], s["lower"], "o-", color="black", label="lower (best attack)")
        for i, (name, values) in enumerate(s["upper"].items()):
            style = "-" if s["sound"][name] else "--"
            label = f"{name} ({'sound' if s['sound'][name] else 'estimate'})"
            ax.plot(s["eps"], values, style, marker="s", ms=3, color=f"C{i + 1}", label=label)
        ax.set_title(f"p = {p}")
        ax.set_xlabel(f"eps ({results['norm']})")
        finite += [v for v in s["lower"] + s["best"] if np.isfinite(v)]
    if finite:  # show the whole band; looser certificates may leave the frame
        lo, hi = min(finite), max(finite)
        pad = 0.08 * (hi - lo) + 1e-9
        axes[0][0].set_ylim(lo - pad, hi + pad)
    axes[0][0].set_ylabel(f"worst-case risk, loss {loss}")
    axes[0][-1].legend(fontsize=7, loc="upper left")
    fig.suptitle(f"{results['model']['name']} on {results['data']['name']}: Wasserstein risk band")
    return _save(fig, path)


def radii_plot(records: Records, path: Path) -> str | None:
    """Distributions of flip distances (attacks) and certified radii (certificates); None if neither."""
    series = {}
    flips = best_flip_distances(records)
    if flips is not None:
        series["flip distance (best attack)"] = flips[records.correct]
    for rec in records.certificates.values():
        if rec.certified_radius is not None:
            label = rec.method if rec.sound else f"{rec.method}, estimate"
            series[f"certified radius ({label})"] = rec.certified_radius[records.correct]
    series = {k: v[np.isfinite(v)] for k, v in series.items()}
    if not any(v.size for v in series.values()):
        return None
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, values in series.items():
        if values.size:
            ax.hist(values, bins=30, histtype="step", linewidth=1.5, label=name)
    ax.set_xlabel(f"distance ({records.config.norm}), correctly classified samples")
    ax.set_ylabel("samples")
    ax.legend(fontsize=7)
    return _save(fig, path)


def lipschitz_plot(records: Records, path: Path) -> str | None:
    """Histograms (log10) of each certificate's per-sample local Lipschitz constants; None if none."""
    series = {
        r.method: r.lipschitz[np.isfinite(r.lipschitz) & (r.lipschitz > 0)]
        for r in records.certificates.values()
        if r.lipschitz is not None
    }
    series = {k: v for k, v in series.items() if v.size}
    if not series:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, values in series.items():
        ax.hist(np.log10(values), bins=30, histtype="step", linewidth=1.5, label=name)
    ax.set_xlabel("log10 Lipschitz constant of the loss (smallest shell)")
    ax.set_ylabel("samples")
    ax.legend(fontsize=7)
    return _save(fig, path)


def write_plots(results: dict[str, Any], records: Records, folder: Path) -> list[str]:
    """Write every plot into ``folder``; return their paths relative to the folder's parent."""
    folder.mkdir(parents=True, exist_ok=True)
    losses = list(dict.fromkeys(k for tm in results["threat_models"] for k in tm["losses"]))
    names = [risk_plot(results, loss, folder / f"risk_vs_eps_{loss}.png") for loss in losses]
    names += [radii_plot(records, folder / "radii.png"), lipschitz_plot(records, folder / "lipschitz.png")]
    return [f"{folder.name}/{n}" for n in names if n is not None]
