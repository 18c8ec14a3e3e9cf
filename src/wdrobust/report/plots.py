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
import torch

from wdrobust import primal
from wdrobust.attacks import ATTACKS
from wdrobust.certify import CERTIFICATES
from wdrobust.pipeline.aggregate import COMBINED, Records, best_flip_distances
from wdrobust.pipeline.document import Results, ThreatResult, p_json
from wdrobust.pipeline.inputs import Inputs
from wdrobust.pipeline.jobs import attack_jobs
from wdrobust.primal.curves import AttainedPoints
from wdrobust.report.io import atomic_write
from wdrobust.report.numbers import number
from wdrobust.threat import ThreatModel

#: Methods in a fixed order: each gets the colour and marker of its position, in every plot and run.
METHODS = ("best attack", *ATTACKS, *CERTIFICATES, COMBINED)
ESTIMATES = tuple(name for name, cls in CERTIFICATES.items() if not getattr(cls, "sound", True))
_MARKERS = "osD^vP*X<>hp"
#: Wasserstein orders in a fixed order of colours (accuracy_vs_eps).
_P_COLOURS = {1.0: "tab:red", 2.0: "tab:blue", math.inf: "tab:green"}
#: How many decades of positive values make an axis logarithmic.
LOG_DECADES = 2.0
#: Samples in the worst-case figure (each as clean / perturbation / shifted).
WORST_SAMPLES = 6
#: Two certificate curves closer than this fraction of the value range are drawn as one ("local = radius").
SAME_TOL = 1e-3
#: A curve more than FAR band heights above the band is clipped (``off_scale``).
FAR = 2.0


def style(name: str) -> dict[str, Any]:
    """The fixed matplotlib style of a method: colour (certificates: tab10 in registry order, tab20 past
    ten; attacks: Dark2, the best attack black), hollow marker and line style (see the module docstring)."""
    index = METHODS.index(name) if name in METHODS else len(METHODS) + sum(map(ord, name)) % 7
    certificates = [*CERTIFICATES, COMBINED]
    if name == "best attack":
        colour = "black"
    elif name in certificates:
        palette = "tab10" if len(certificates) <= 10 else "tab20"  # one distinct colour per certificate
        colour = plt.get_cmap(palette)(certificates.index(name) % 20)
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
    """One legend for the figure, right against the axes (constrained layout, never over the data),
    without duplicates."""
    handles: dict[str, Any] = {}
    for ax in np.ravel(axes):
        for h, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, h)
    fig.legend(handles.values(), handles.keys(), loc="outside right upper", fontsize=8)


def same_curves(curves: dict[str, list[np.ndarray]], tol: float = SAME_TOL) -> list[list[str]]:
    """Names grouped by curves that look the same: two names share a group when their values differ by at
    most ``tol`` times the range of all values in every panel (NaN equal to NaN); groups and names in
    first-appearance order. curves: name -> one value array per panel."""
    finite = np.asarray([v for vals in curves.values() for a in vals for v in a if np.isfinite(v)])
    atol = tol * float(finite.max() - finite.min()) if finite.size else 0.0
    groups: list[list[str]] = []
    for name, vals in curves.items():
        for group in groups:
            pairs = zip(vals, curves[group[0]], strict=True)
            if all(np.allclose(a, b, rtol=0.0, atol=atol, equal_nan=True) for a, b in pairs):
                group.append(name)
                break
        else:
            groups.append([name])
    return groups


def off_scale(curves: dict[str, np.ndarray], band: np.ndarray, log: bool) -> list[str]:
    """The curves that would squash the band: their largest value lies more than FAR band heights above
    the band's top (heights in decades on a log axis). band: every value of the band's two edges."""
    t = np.log10 if log else (lambda v: v)
    edges = t(band[np.isfinite(band)])
    if edges.size == 0:
        return []
    top, height = edges.max(), max(float(edges.max() - edges.min()), 1e-12)
    far = []
    for name, vals in curves.items():
        v = vals[np.isfinite(vals)]
        if v.size and (not log or (v > 0).all()) and float(t(v).max() - top) > FAR * height:
            far.append(name)
    return far


def risk_plot(results: Results, loss: str, path: Path) -> str:
    """Risk versus eps for one loss, one panel per p: the band, the best attack and one curve per group
    of equal certificate curves ("local = radius"); a curve far above the band (``off_scale``) is
    clipped at the top of the axis and its legend entry says so."""
    ps = results.ps
    series = [_series(results, loss, p) for p in ps]
    names = list(dict.fromkeys(n for s in series for n in s["upper"]))
    nan = [np.full(len(s["eps"]), np.nan) for s in series]
    curves = {
        n: [np.asarray(s["upper"].get(n, nan[k]), dtype=float) for k, s in enumerate(series)] for n in names
    }
    sound = {n: all(s["sound"].get(n, True) for s in series) for n in names}
    groups = [g for sd in (True, False) for g in same_curves({n: curves[n] for n in names if sound[n] is sd})]
    band = np.concatenate([np.asarray(s["lower"] + s["best"], dtype=float) for s in series])
    flat = {n: np.concatenate(curves[n]) for n in names}
    log = _log_worthy([*band, *(v for n in names for v in flat[n])])
    far = off_scale(flat, band, log)
    core = [*band, *(v for n in names if n not in far for v in flat[n])]
    fig, axes = plt.subplots(1, len(ps), figsize=(4.2 * len(ps) + 2.6, 3.8), squeeze=False, sharey=True,
                             layout="constrained")  # fmt: skip
    for ax, p, s in zip(axes[0], ps, series, strict=True):
        ax.fill_between(s["eps"], s["lower"], s["best"], color="tab:blue", alpha=0.15, label="band")
        ax.plot(s["eps"], s["lower"], label="best attack (attained)", zorder=5, **style("best attack"))
        for k, group in enumerate(groups):
            vals = s["upper"].get(group[0])
            if vals is None:
                continue
            label = f"{' = '.join(group)} ({'sound' if sound[group[0]] else 'estimate'})"
            if group[0] in far:
                label += f"; off scale, up to {number(float(np.nanmax(flat[group[0]])), 3)}"
            # later curves thinner and smaller: a curve drawn over a close one leaves it visible around it
            drawn = style(group[0]) | {"linewidth": 1.0 + 2.4 / (k + 1), "markersize": 3.5 + 7.0 / (k + 1)}
            ax.plot(s["eps"], vals, label=label, zorder=3 + k, **drawn)
        ax.set_title(f"p = {p_json(p)}")
        ax.set_xlabel(f"eps ({results.norm})")
        _set_scale(ax, core)
        ax.grid(alpha=0.3)
    if far:
        lo, hi = float(np.nanmin(core)), float(np.nanmax(core))
        if axes[0][0].get_yscale() == "log":
            pad = (hi / lo) ** 0.05
            axes[0][0].set_ylim(lo / pad, hi * pad)
        else:
            pad = 0.05 * (hi - lo or 1.0)
            axes[0][0].set_ylim(lo - pad, hi + pad)
    axes[0][0].set_ylabel(f"worst-case risk, loss {loss}")
    _legend(fig, axes)
    fig.suptitle(f"Wasserstein risk band, {loss}: {_who(results)}", fontsize=10)
    return _save(fig, path)


def accuracy_plot(results: Results, path: Path) -> str | None:
    """Distributional robust accuracy against eps: per p the band [certified, attacked]; None without
    zero_one."""
    ps = results.ps if "zero_one" in results.losses else []
    if not ps:
        return None
    fig, ax = plt.subplots(figsize=(8.4, 3.8), layout="constrained")
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
    fig.legend(loc="outside right upper", fontsize=8)
    ax.set_title(f"Accuracy in the W_p ball, certified to attacked:\n{_who(results)}", fontsize=10)
    return _save(fig, path)


def merged(series: dict[str, tuple[bool, np.ndarray]]) -> dict[str, tuple[str, bool, np.ndarray]]:
    """Per-sample series that look the same (``same_curves``, among the sound and among the estimates)
    drawn once: "local = radius" -> (the first name, whose style it is drawn in, sound, its values (N,)).
    series: name -> (sound, values (N,))."""
    groups = [
        group
        for sound in (True, False)
        for group in same_curves({n: [v] for n, (sd, v) in series.items() if sd is sound})
    ]
    return {" = ".join(g): (g[0], *series[g[0]]) for g in groups}


def _radii(records: Records) -> dict[str, tuple[str, bool, np.ndarray]]:
    """Per certificate that gives radii, equal ones merged (``merged``): the style name, whether they are
    certified (sound; else estimates) and the radii of the correctly classified samples."""
    return merged(
        {
            r.method: (r.sound, r.certified_radius[records.correct])
            for r in records.certificates.values()
            if r.certified_radius is not None
        }
    )


def _radius_label(name: str, sound: bool) -> str:
    """'certified radius (crown)' or 'estimated radius (first-order; estimate, not certified)'."""
    return f"certified radius ({name})" if sound else f"estimated radius ({name}; estimate, not certified)"


def radius_flip_plot(results: Results, records: Records, path: Path) -> str | None:
    """Per sample: certified radius (y) against the best attack's flip distance (x), equal radii merged
    ("local = radius", ``merged``); None without both."""
    flips = best_flip_distances(records)
    radii = _radii(records)
    if flips is None or not radii:
        return None
    x = flips[records.correct]
    fig, ax = plt.subplots(figsize=(8.0, 4.6), layout="constrained")
    shown = [v for _, _, r in radii.values() for v in r[np.isfinite(x) & (r > 0)]]
    shown += list(x[np.isfinite(x) & (x > 0)])
    log = _log_worthy(shown)
    for name, (first, sound, r) in radii.items():
        keep = np.isfinite(x) & np.isfinite(r) & ((r > 0) if log else True)
        colour = style(first)["color"]
        # estimates as crosses (no outline): never read as certified points
        hollow = {"facecolors": "none", "edgecolors": [colour], "marker": style(first)["marker"]}
        marker = hollow if sound else {"c": [colour], "marker": "x"}
        kind = "" if sound else ": estimate, not certified"
        ax.scatter(
            x[keep], r[keep], s=22, label=f"{name}{kind} ({int(keep.sum())} samples)", alpha=0.8, **marker
        )
    finite = [v for v in shown if np.isfinite(v)]
    if finite:
        lo, hi = (min(finite), max(finite)) if log else (0.0, max(finite))
        ax.plot([lo, hi], [lo, hi], color="grey", linewidth=1, label="radius = flip distance")
    if log:
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xlabel(f"flip distance of the best attack ({records.config.norm})")
    ax.set_ylabel(f"certified radius ({records.config.norm}); crosses: estimates")
    ax.grid(alpha=0.3)
    fig.legend(loc="outside right upper", fontsize=8)
    ax.set_title(f"Certified radius vs attack flip distance\n{_who(results)}", fontsize=10)
    return _save(fig, path)


def radii_plot(results: Results, records: Records, path: Path) -> str | None:
    """Distributions of flip distances (attacks) and certified radii (certificates); None if neither."""
    series = {}
    flips = best_flip_distances(records)
    if flips is not None:
        series["best attack"] = ("flip distance (best attack)", flips[records.correct])
    for name, (first, sound, r) in _radii(records).items():
        series[first] = (_radius_label(name, sound), r)
    series = {k: (label, v[np.isfinite(v)]) for k, (label, v) in series.items()}
    if not any(v.size for _, v in series.values()):
        return None
    every = [float(v) for _, vals in series.values() for v in vals if v > 0]
    log = _log_worthy(every)  # radii spanning decades: log axis, zero radii left out
    bins: Any = np.logspace(np.log10(min(every)), np.log10(max(every)) + 1e-9, 31) if log else 30
    fig, ax = plt.subplots(figsize=(8, 3.6), layout="constrained")
    for k, (name, (label, values)) in enumerate(series.items()):
        shown = values[values > 0] if log else values
        if shown.size:
            st = style(name)
            ax.hist(shown, bins=bins, histtype="step", linewidth=1.0 + 2.4 / (k + 1), color=st["color"],
                    linestyle=st["linestyle"], label=label)  # fmt: skip
    if log:
        ax.set_xscale("log")
    zeros = "; zero radii left out" if log else ""
    ax.set_xlabel(f"distance ({records.config.norm}), correctly classified samples{zeros}")
    ax.set_ylabel("samples")
    fig.legend(loc="outside right upper", fontsize=8)
    ax.set_title(f"Flip distances and certified radii\n{_who(results)}", fontsize=10)
    return _save(fig, path)


def lipschitz_plot(results: Results, records: Records, path: Path) -> str | None:
    """Histograms of each certificate's per-sample local Lipschitz constants (log axis), equal ones merged
    (``merged``); None if none."""
    methods = records.certificates.values()
    every_method = {r.method: (True, r.lipschitz) for r in methods if r.lipschitz is not None}
    series = {
        name: (first, v[np.isfinite(v) & (v > 0)]) for name, (first, _, v) in merged(every_method).items()
    }
    series = {k: (first, v) for k, (first, v) in series.items() if v.size}
    if not series:
        return None
    every = np.concatenate([v for _, v in series.values()])
    bins = np.logspace(np.log10(every.min()), np.log10(every.max()) + 1e-9, 31)
    fig, ax = plt.subplots(figsize=(7, 3.6), layout="constrained")
    for k, (name, (first, values)) in enumerate(series.items()):
        st = style(first)
        ax.hist(values, bins=bins, histtype="step", linewidth=1.0 + 2.4 / (k + 1), color=st["color"],
                linestyle=st["linestyle"], label=name)  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("Lipschitz constant of the loss on the smallest shell")
    ax.set_ylabel("samples")
    fig.legend(loc="outside right upper", fontsize=8)
    ax.set_title(f"Per-sample Lipschitz constants (smallest shell)\n{_who(results)}", fontsize=10)
    return _save(fig, path)


def _predict(inputs: Inputs | None, images: np.ndarray) -> list[int] | None:
    """argmax f(x) of the run's model for images (k, *S); None without the model."""
    if inputs is None:
        return None
    with torch.no_grad():
        logits = inputs.model(torch.as_tensor(images, dtype=torch.float32))
    return [int(c) for c in logits.argmax(dim=1)]


def _image(ax: Any, img: np.ndarray, **kwargs: Any) -> Any:
    """Show one sample (C, H, W): grey for one channel, RGB for three."""
    hwc = img.transpose(1, 2, 0)
    return ax.imshow(hwc[..., 0] if hwc.shape[2] == 1 else np.clip(hwc, 0, 1), **kwargs)


def _best_distribution(
    records: Records, points: dict[str, np.ndarray]
) -> tuple[str, float, float, Any, Any, np.ndarray] | None:
    """(loss, eps, p, attack record, its lower bound, its points) of the attack job whose worst-case
    distribution is largest at the smallest eps and smallest p > 1 (see ``worst_case_plot``)."""
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
        lb = primal.lower_bound(
            AttainedPoints(rec.t, rec.gains[loss]), threat, clean=records.clean_loss[loss]
        )
        if best is None or lb.risk > best[4].risk:
            best = (loss, eps, p, rec, lb, points[job.key])
    return best


def worst_case_plot(
    results: Results,
    records: Records,
    points: dict[str, np.ndarray],
    path: Path,
    inputs: Inputs | None = None,
) -> str | None:
    """The worst-case distribution of the best attack job for zero_one (else CE) at the smallest eps and
    the smallest p > 1 (p = 1 moves all mass onto very few samples; it is used when it is the only finite
    p, as p = inf is when it is the only p): its WORST_SAMPLES most heavily moved points, each as clean
    image x_i, perturbation x' - x_i (diverging colours, symmetric around 0) and shifted image x', with
    the predicted classes and the probability mass moved; None without stored points or image-shaped
    samples. Without ``inputs`` (the run's model and samples, ``Sources.inputs``) only the shifted
    images are shown, with their mass.

    points: attack job key -> candidate points (N, M, *S) (columns as in the job's record, NaN padding).
    """
    found = _best_distribution(records, points)
    if found is None or found[5].ndim != 5:
        return None
    loss, eps, p, rec, lb, pts = found
    alloc, n = lb.allocation, records.n
    # (sample, candidate, mass): sample i keeps (1 - alpha_i)/N at column low_i and alpha_i/N at high_i;
    # column 0 is the clean point, column k > 0 candidate k - 1
    moved = [
        (i, int(col) - 1, float(w) / n)
        for i in range(n)
        for col, w in ((alloc.low[i], 1 - alloc.alpha[i]), (alloc.high[i], alloc.alpha[i]))
        if col > 0 and w > 0
    ]
    moved = sorted(moved, key=lambda m: -m[2])[:WORST_SAMPLES]
    if not moved:
        return None
    shifted = np.stack([np.nan_to_num(pts[i, k]) for i, k, _ in moved])
    clean = None if inputs is None else inputs.x[[i for i, _, _ in moved]].numpy()
    pred_shifted, pred_clean = _predict(inputs, shifted), None if clean is None else _predict(inputs, clean)
    cols = 3 if clean is not None else 1
    per_row = 2 if cols == 3 else 6
    rows = -(-len(moved) // per_row)
    fig, axes = plt.subplots(rows, cols * per_row, figsize=(1.6 * cols * per_row, 2.0 * rows + 1.1),
                             squeeze=False, layout="constrained")  # fmt: skip
    for ax in axes.ravel():
        ax.axis("off")
    for j, (i, k, weight) in enumerate(moved):
        row, first = divmod(j, per_row)
        cells = axes[row, first * cols : (first + 1) * cols]
        gain = rec.gains[loss][i, k]
        if clean is not None and pred_clean is not None:
            _image(cells[0], clean[j], cmap="gray", vmin=0, vmax=1)
            cells[0].set_title(f"clean #{i}\ny={int(records.y[i])} pred {pred_clean[j]}", fontsize=7)
            delta = shifted[j] - clean[j]
            bound = float(np.abs(delta).max()) or 1.0
            _image(cells[1], delta, cmap="RdBu_r", vmin=-bound, vmax=bound)
            cells[1].set_title(f"perturbation\nd={number(float(rec.t[i, k]), 2)}", fontsize=7)
        pred = "" if pred_shifted is None else f"pred {pred_shifted[j]}, "
        _image(cells[-1], shifted[j], cmap="gray", vmin=0, vmax=1)
        cells[-1].set_title(f"shifted: {pred}mass {number(weight, 2)}\n{loss} +{number(float(gain), 2)}",
                            fontsize=7)  # fmt: skip
    fig.suptitle(
        f"Worst-case distribution of {rec.method} ({loss}, eps = {number(eps)}, p = {p_json(p)}): the "
        f"{len(moved)} most moved of {n} samples\nmass: probability moved to the shifted image, d: its "
        f"distance; perturbation in red (+) and blue (-)\n{_who(results)}",
        fontsize=8,
    )
    return _save(fig, path)


def write_plots(
    results: Results,
    records: Records,
    folder: Path,
    points: dict[str, np.ndarray] | None = None,
    inputs: Inputs | None = None,
) -> list[str]:
    """Write every plot into ``folder``; return their paths relative to the folder's parent."""
    folder.mkdir(parents=True, exist_ok=True)
    names = [risk_plot(results, loss, folder / f"risk_vs_eps_{loss}.png") for loss in results.losses]
    names += [
        accuracy_plot(results, folder / "accuracy_vs_eps.png"),
        radius_flip_plot(results, records, folder / "radius_vs_flip.png"),
        radii_plot(results, records, folder / "radii.png"),
        lipschitz_plot(results, records, folder / "lipschitz.png"),
        worst_case_plot(results, records, points or {}, folder / "worst_case.png", inputs),
    ]
    return [f"{folder.name}/{n}" for n in names if n is not None]
