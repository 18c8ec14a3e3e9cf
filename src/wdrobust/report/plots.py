"""Plots of a run (matplotlib, Agg backend), each saved atomically as PNG under ``plots/``.

Every method keeps one colour, marker and line style in every plot (``style``; sound certificates solid,
estimates dashed, attacks dotted); markers are hollow and drawn in a fixed order so that coinciding curves
stay visible; legends sit outside the axes; a value axis is logarithmic when its positive values span
more than two decades. Titles name the model, the data, the norm and the (eps, p) shown.

- ``risk_vs_eps_<loss>.png``: per p, the risk against eps: the band [best attack, best sound
  certificate], the best attained lower bound and every certificate's upper bound; eps = 0 is the clean
  risk.
- ``accuracy_vs_eps.png``: distributional robust accuracy against eps, per p the band [certified,
  attacked] (zero_one).
- ``radius_vs_flip.png``: per correctly classified sample, each sound certificate's certified radius
  against the best attack's flip distance (below the diagonal: the gap the truth lies in).
- ``radii.png``: distributions of flip distances and certified radii; ``lipschitz.png``: distributions of
  each certificate's per-sample local Lipschitz constants (log axis).
- ``worst_case.png`` (when the run stores attack points): the images of the worst-case distribution of
  the best attack job (zero_one, else CE) at the smallest eps and smallest p > 1, the most heavily moved
  points first, each with its probability weight, transport distance and loss increase.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from wdrobust import primal
from wdrobust.attacks import ATTACKS
from wdrobust.certify import CERTIFICATES
from wdrobust.evaluate.aggregate import COMBINED, Records, best_flip_distances
from wdrobust.evaluate.jobs import attack_jobs
from wdrobust.primal.curves import AttainedPoints
from wdrobust.report.document import Results, ThreatResult, p_json
from wdrobust.report.io import atomic_write
from wdrobust.threat import ThreatModel

#: Methods in a fixed order: each gets the colour and marker of its position, in every plot and run.
METHODS = ("best attack", *ATTACKS, *CERTIFICATES, COMBINED)
ESTIMATES = tuple(name for name, cls in CERTIFICATES.items() if not getattr(cls, "sound", True))
_MARKERS = "osD^vP*X<>hp"
#: Wasserstein orders in a fixed order of colours (accuracy_vs_eps).
_P_COLOURS = {1.0: "tab:red", 2.0: "tab:blue", math.inf: "tab:green"}
#: How many decades of positive values make an axis logarithmic.
LOG_DECADES = 2.0
#: Images in the worst-case grid.
GRID = 16


def style(name: str) -> dict[str, Any]:
    """The fixed matplotlib style of a method: colour (certificates: tab10 in registry order, attacks:
    Dark2, the best attack black), hollow marker and line style (see the module docstring)."""
    index = METHODS.index(name) if name in METHODS else len(METHODS) + sum(map(ord, name)) % 7
    certificates = [*CERTIFICATES, COMBINED]
    if name == "best attack":
        colour = "black"
    elif name in certificates:
        colour = plt.get_cmap("tab10")(certificates.index(name) % 10)
    else:
        colour = plt.get_cmap("Dark2")(index % 8)
    dash = ":" if name in ATTACKS else "--" if name in ESTIMATES else "-"
    return {
        "color": colour,
        "marker": _MARKERS[index % len(_MARKERS)],
        "linestyle": "-" if name == "best attack" else dash,
        "markerfacecolor": "none",
        "markersize": 6,
        "linewidth": 1.6,
    }


def _log_worthy(values: list[float]) -> bool:
    """Whether the positive finite values span more than LOG_DECADES decades (and none is <= 0)."""
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    return v.size > 1 and bool((v > 0).all()) and math.log10(v.max() / v.min()) > LOG_DECADES


def _set_scale(ax: Any, values: list[float]) -> str:
    """Logarithmic value axis when the values are positive and span decades; symmetric-log (linear
    within the smallest quarter of magnitudes, then log) when they change sign (margins) and their
    magnitudes span decades; else linear. Returns the scale set."""
    if _log_worthy(values):
        ax.set_yscale("log")
        return "log"
    mags = np.abs([x for x in values if np.isfinite(x) and x != 0])
    if mags.size > 1 and math.log10(mags.max() / np.median(mags)) > LOG_DECADES - 1:
        ax.set_yscale("symlog", linthresh=float(10 ** np.floor(np.log10(np.percentile(mags, 25)))))
        return "symlog"
    return "linear"


def _save(fig: plt.Figure, path: Path) -> str:
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    plt.close(fig)
    return path.name


def _who(results: Results) -> str:
    """'<model> on <data> (n samples, <norm> cost)' for titles."""
    return f"{results.model.name} on {results.data.name} (n = {results.n}, {results.norm} cost)"


def _rows(results: Results, loss: str, p: float) -> list[ThreatResult]:
    """The threat models of order p that bound ``loss``, by increasing eps."""
    return sorted(
        (tm for tm in results.threat_models if tm.p == p and loss in tm.losses), key=lambda tm: tm.eps
    )


def _or_nan(value: float | None) -> float:
    return np.nan if value is None else value


def _series(results: Results, loss: str, p: float) -> dict[str, Any]:
    """eps grid (with 0) and the lower / per-certificate upper values for one (loss, p)."""
    rows = _rows(results, loss, p)
    entries = [tm.losses[loss] for tm in rows]
    clean = entries[0].clean
    eps = [0.0] + [tm.eps for tm in rows]
    lower = [clean] + [_or_nan(e.lower_bound) for e in entries]
    certs = list(dict.fromkeys(k for e in entries for k in e.upper))
    upper = {c: [clean] + [e.upper[c].value if c in e.upper else np.nan for e in entries] for c in certs}
    sound = {c: all(c in e.upper and e.upper[c].sound for e in entries) for c in certs}
    best = [clean] + [_or_nan(e.upper_bound) for e in entries]
    return {"eps": eps, "lower": lower, "upper": upper, "sound": sound, "best": best}


def _legend(fig: plt.Figure, axes: Any) -> None:
    """One legend for the figure, right of the axes (never over the data), without duplicates."""
    handles: dict[str, Any] = {}
    for ax in np.ravel(axes):
        for h, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, h)
    fig.legend(handles.values(), handles.keys(), loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)


def risk_plot(results: Results, loss: str, path: Path) -> str:
    """Risk versus eps for one loss, one panel per p."""
    ps = results.ps
    series = [_series(results, loss, p) for p in ps]
    values = [v for s in series for v in s["lower"] + [x for u in s["upper"].values() for x in u]]
    fig, axes = plt.subplots(1, len(ps), figsize=(4.2 * len(ps), 3.6), squeeze=False, sharey=True)
    for ax, p, s in zip(axes[0], ps, series, strict=True):
        ax.fill_between(s["eps"], s["lower"], s["best"], color="tab:blue", alpha=0.15, label="band")
        ax.plot(s["eps"], s["lower"], label="best attack (attained)", zorder=5, **style("best attack"))
        for k, (name, vals) in enumerate(s["upper"].items()):
            label = f"{name} ({'sound' if s['sound'][name] else 'estimate'})"
            # later curves thinner and smaller: a curve drawn over an equal one leaves it visible around it
            drawn = style(name) | {"linewidth": 1.0 + 2.4 / (k + 1), "markersize": 3.5 + 7.0 / (k + 1)}
            ax.plot(s["eps"], vals, label=label, zorder=3 + k, **drawn)
        ax.set_title(f"p = {p_json(p)}")
        ax.set_xlabel(f"eps ({results.norm})")
        scale = _set_scale(ax, values)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"worst-case risk, loss {loss}" + ("" if scale == "linear" else f" ({scale})"))
    _legend(fig, axes)
    fig.suptitle(f"Wasserstein risk band, {loss}: {_who(results)}", fontsize=10)
    return _save(fig, path)


def accuracy_plot(results: Results, path: Path) -> str | None:
    """Distributional robust accuracy against eps: per p the band [certified, attacked]; None without
    zero_one."""
    ps = results.ps if "zero_one" in results.losses else []
    if not ps:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for k, p in enumerate(ps):
        rows = _rows(results, "zero_one", p)
        acc = [tm.losses["zero_one"].accuracy for tm in rows]
        clean = acc[0].clean
        eps = [0.0] + [tm.eps for tm in rows]
        lo = [clean] + [_or_nan(a.lower) for a in acc]
        hi = [clean] + [_or_nan(a.upper) for a in acc]
        colour = _P_COLOURS.get(p, plt.get_cmap("tab10")(k))
        ax.fill_between(eps, lo, hi, color=colour, alpha=0.18)
        # later p thinner and smaller, so that equal curves of several p stay visible
        size = {"linewidth": 1.0 + 2.4 / (k + 1), "markersize": 3.5 + 7.0 / (k + 1), "mfc": "none"}
        ax.plot(eps, hi, ":", marker="o", color=colour, label=f"p = {p_json(p)}: attacked (upper)", **size)
        ax.plot(eps, lo, "-", marker="s", color=colour, label=f"p = {p_json(p)}: certified (lower)", **size)
    ax.set_xlabel(f"eps ({results.norm})")
    ax.set_ylabel("distributional robust accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    ax.set_title(f"Accuracy in the W_p ball, certified to attacked:\n{_who(results)}", fontsize=10)
    return _save(fig, path)


def _certified(records: Records) -> dict[str, np.ndarray]:
    """Certified radii of the correctly classified samples per certificate that gives them."""
    return {
        (r.method if r.sound else f"{r.method}, estimate"): r.certified_radius[records.correct]
        for r in records.certificates.values()
        if r.certified_radius is not None
    }


def radius_flip_plot(results: Results, records: Records, path: Path) -> str | None:
    """Per sample: certified radius (y) against the best attack's flip distance (x); None without both."""
    flips = best_flip_distances(records)
    radii = _certified(records)
    if flips is None or not radii:
        return None
    x = flips[records.correct]
    fig, ax = plt.subplots(figsize=(5.4, 4.4))
    shown = [v for r in radii.values() for v in r[np.isfinite(x) & (r > 0)]]
    shown += list(x[np.isfinite(x) & (x > 0)])
    log = _log_worthy(shown)
    for name, r in radii.items():
        keep = np.isfinite(x) & np.isfinite(r) & ((r > 0) if log else True)
        st = style(name.split(",")[0])
        ax.scatter(x[keep], r[keep], s=22, facecolors="none", edgecolors=[st["color"]], marker=st["marker"],
                   label=f"{name} ({int(keep.sum())} samples)", alpha=0.8)  # fmt: skip
    finite = [v for v in shown if np.isfinite(v)]
    if finite:
        lo, hi = (min(finite), max(finite)) if log else (0.0, max(finite))
        ax.plot([lo, hi], [lo, hi], color="grey", linewidth=1, label="radius = flip distance")
    if log:
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xlabel(f"flip distance of the best attack ({records.config.norm})")
    ax.set_ylabel("certified radius")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    ax.set_title(f"Certified radius vs attack flip distance\n{_who(results)}", fontsize=10)
    return _save(fig, path)


def radii_plot(results: Results, records: Records, path: Path) -> str | None:
    """Distributions of flip distances (attacks) and certified radii (certificates); None if neither."""
    series = {}
    flips = best_flip_distances(records)
    if flips is not None:
        series["best attack"] = ("flip distance (best attack)", flips[records.correct])
    for name, r in _certified(records).items():
        series[name.split(",")[0]] = (f"certified radius ({name})", r)
    series = {k: (label, v[np.isfinite(v)]) for k, (label, v) in series.items()}
    if not any(v.size for _, v in series.values()):
        return None
    every = [float(v) for _, vals in series.values() for v in vals if v > 0]
    log = _log_worthy(every)  # radii spanning decades: log axis, zero radii left out
    bins: Any = np.logspace(np.log10(min(every)), np.log10(max(every)) + 1e-9, 31) if log else 30
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for k, (name, (label, values)) in enumerate(series.items()):
        shown = values[values > 0] if log else values
        if shown.size:
            st = style(name)
            ax.hist(shown, bins=bins, histtype="step", linewidth=1.0 + 2.4 / (k + 1), color=st["color"],
                    linestyle=st["linestyle"], label=label)  # fmt: skip
    if log:
        ax.set_xscale("log")
    zeros = " (log; zero radii left out)" if log else ""
    ax.set_xlabel(f"distance ({records.config.norm}), correctly classified samples{zeros}")
    ax.set_ylabel("samples")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    ax.set_title(f"Flip distances and certified radii\n{_who(results)}", fontsize=10)
    return _save(fig, path)


def lipschitz_plot(results: Results, records: Records, path: Path) -> str | None:
    """Histograms of each certificate's per-sample local Lipschitz constants (log axis); None if none."""
    series = {
        r.method: r.lipschitz[np.isfinite(r.lipschitz) & (r.lipschitz > 0)]
        for r in records.certificates.values()
        if r.lipschitz is not None
    }
    series = {k: v for k, v in series.items() if v.size}
    if not series:
        return None
    every = np.concatenate(list(series.values()))
    bins = np.logspace(np.log10(every.min()), np.log10(every.max()) + 1e-9, 31)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for k, (name, values) in enumerate(series.items()):
        st = style(name)
        ax.hist(values, bins=bins, histtype="step", linewidth=1.0 + 2.4 / (k + 1), color=st["color"],
                linestyle=st["linestyle"], label=name)  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("Lipschitz constant of the loss on the smallest shell (log)")
    ax.set_ylabel("samples")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    ax.set_title(f"Per-sample Lipschitz constants (smallest shell)\n{_who(results)}", fontsize=10)
    return _save(fig, path)


def worst_case_plot(
    results: Results, records: Records, points: dict[str, np.ndarray], path: Path
) -> str | None:
    """The worst-case distribution of the best attack job for zero_one (else CE) at the smallest eps and
    the smallest p > 1 (p = 1 moves all mass onto very few samples; it is used when it is the only finite
    p, as p = inf is when it is the only p), as a grid of its most heavily moved points; None without
    stored points or image-shaped samples.

    points: attack job key -> candidate points (N, M, *S) (columns as in the job's record, NaN padding).
    """
    loss = "zero_one" if "zero_one" in records.clean_loss else "ce"
    if loss not in records.clean_loss or not points:
        return None
    cfg = records.config
    above_one = [q for q in cfg.p_values if 1 < q < math.inf]
    eps, p = min(cfg.eps_values), min(above_one) if above_one else min(cfg.p_values)
    threat = ThreatModel(cfg.norm, eps, p)
    best = None
    for job in attack_jobs(cfg, threat):
        rec = records.attacks.get(job.key)
        if rec is None or job.key not in points or loss not in rec.gains:
            continue
        key = job.key
        attained = AttainedPoints(rec.t, rec.gains[loss])
        lb = primal.lower_bound(attained, threat, clean=records.clean_loss[loss])
        if best is None or lb.risk > best[1].risk:
            best = (rec, lb, points[key])
    if best is None or best[2].ndim != 5:
        return None
    rec, lb, pts = best
    alloc, n = lb.allocation, records.n
    # (sample, candidate, mass): sample i keeps (1 - alpha_i)/N at column low_i and alpha_i/N at high_i;
    # column 0 is the clean point, column k > 0 candidate k - 1
    moved = [
        (i, int(col) - 1, float(w) / n)
        for i in range(n)
        for col, w in ((alloc.low[i], 1 - alloc.alpha[i]), (alloc.high[i], alloc.alpha[i]))
        if col > 0 and w > 0
    ]
    moved.sort(key=lambda m: -m[2])
    moved = moved[:GRID]
    if not moved:
        return None
    cols = 8
    rows = -(-len(moved) // cols)
    height = 2.3 * rows + 1.0
    fig, axes = plt.subplots(rows, cols, figsize=(1.7 * cols, height), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (i, k, weight) in zip(axes.ravel(), moved, strict=False):
        img = np.nan_to_num(pts[i, k]).transpose(1, 2, 0)
        ax.imshow(img[..., 0] if img.shape[2] == 1 else np.clip(img, 0, 1), cmap="gray", vmin=0, vmax=1)
        gain = rec.gains[loss][i, k]
        label = f"w={weight:.2g}  y={int(records.y[i])}\nd={rec.t[i, k]:.2g}  {loss} +{gain:.2g}"
        ax.set_title(label, fontsize=7)
    fig.suptitle(
        f"Worst-case distribution of {rec.method} ({loss}, eps = {eps:g}, p = {p:g}): the {len(moved)} "
        f"most moved of {n} samples\nw: probability mass moved there, d: its distance, +: loss increase\n"
        f"{_who(results)}",
        fontsize=8,
    )
    fig.subplots_adjust(top=1 - 1.0 / height, bottom=0.02, left=0.02, right=0.98, hspace=0.45)
    return _save(fig, path)


def write_plots(
    results: Results, records: Records, folder: Path, points: dict[str, np.ndarray] | None = None
) -> list[str]:
    """Write every plot into ``folder``; return their paths relative to the folder's parent."""
    folder.mkdir(parents=True, exist_ok=True)
    names = [risk_plot(results, loss, folder / f"risk_vs_eps_{loss}.png") for loss in results.losses]
    names += [
        accuracy_plot(results, folder / "accuracy_vs_eps.png"),
        radius_flip_plot(results, records, folder / "radius_vs_flip.png"),
        radii_plot(results, records, folder / "radii.png"),
        lipschitz_plot(results, records, folder / "lipschitz.png"),
        worst_case_plot(results, records, points or {}, folder / "worst_case.png"),
    ]
    return [f"{folder.name}/{n}" for n in names if n is not None]
