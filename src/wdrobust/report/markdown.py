"""``report.md``: the tables a practitioner reads, rendered from the results.json document.

Per loss, one row per threat model with the band [best lower bound, best sound upper bound], the gap and
UB/LB; then every method's value with its label: ``attained`` (lower bound from an explicit distribution
inside the ball), ``sound`` (guaranteed upper bound) or ``estimate`` (an upper-bound estimate that may be
below the truth).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return f"{value:.{digits}g}" if abs(value) < 1e4 else f"{value:.3e}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return [*lines, ""]


def _entries(results: dict[str, Any], loss: str) -> Iterator[tuple[list[str], dict[str, Any]]]:
    """([eps text, p], the loss's entry) for every threat model that has the loss."""
    for tm in results["threat_models"]:
        entry = tm["losses"].get(loss)
        if entry is not None:
            yield [tm["eps_text"], str(tm["p"])], entry


def _band_rows(results: dict[str, Any], loss: str) -> list[list[str]]:
    rows = []
    for lead, entry in _entries(results, loss):
        best = entry["lower"]["best"]
        ub = entry["best_sound_upper"]
        rows.append(
            [
                *lead,
                _num(entry["clean"]),
                _num(None if best is None else best["value"]),
                "—" if ub is None else f"{_num(ub['value'])} ({ub['method']})",
                _num(entry["gap"]),
                _num(entry["ratio"], 3),
            ]
        )
    return rows


def _accuracy_rows(results: dict[str, Any]) -> list[list[str]]:
    rows = []
    for lead, entry in _entries(results, "zero_one"):
        acc = entry["accuracy"]
        ub = entry["best_sound_upper"]
        rows.append(
            [
                *lead,
                _num(acc["clean"]),
                _num(acc["lower"]),
                _num(acc["upper"]),
                "—" if ub is None else ub["method"],
            ]
        )
    return rows


def _method_rows(results: dict[str, Any], loss: str) -> list[list[str]]:
    rows = []
    for lead, entry in _entries(results, loss):
        for name, v in entry["lower"]["attacks"].items():
            audit = "ok" if v["budget_ok"] else "EXCEEDED"
            passes = f"{v['forward_passes']}/{v['backward_passes']}"
            rows.append(
                [*lead, name, "lower", "attained", _num(v["value"]), f"{v['seconds']:.1f}", passes, audit]
            )
        best = entry["lower"]["best"]
        if best is not None:
            audit = "ok" if best["budget_ok"] else "EXCEEDED"
            rows.append(
                [*lead, "best of all attacks", "lower", "attained", _num(best["value"]), "", "", audit]
            )
        for name, v in entry["upper"].items():
            label = "sound" if v["sound"] else "estimate"
            rows.append([*lead, name, "upper", label, _num(v["value"]), f"{v['seconds']:.1f}", "", ""])
    return rows


def render_markdown(results: dict[str, Any], plots: list[str]) -> str:
    """The report.md text of a results document; ``plots`` are file names relative to the run folder."""
    model, data = results["model"], results["data"]
    lines = [
        f"# Wasserstein distributional robustness of `{model['name']}` on `{data['name']}`",
        "",
        f"- samples: n = {results['n']} (first n of split `{data['split']}`), seed {results['seed']}",
        f"- threat: norm `{results['norm']}`; transport cost ||x - x'|| (labels fixed)",
        f"- clean accuracy {_num(results['clean']['accuracy'])}; clean losses "
        + ", ".join(f"{k} {_num(v)}" for k, v in results["clean"]["loss"].items()),
        f"- configuration hash `{results['config_hash'][:16]}`; "
        + ", ".join(f"{k} {v}" for k, v in results["versions"].items()),
        "",
        "Lower bounds are **attained**: an explicit distribution inside the Wasserstein ball",
        "(budget audited) reaches them. Upper bounds are **sound** (guaranteed) or **estimates**",
        "(may lie below the truth; never used for the band).",
        "The true worst-case risk lies in [lower, sound upper].",
        "",
    ]
    if results["incomplete_jobs"]:
        lines += [f"**Incomplete jobs (left out):** {', '.join(results['incomplete_jobs'])}", ""]
    if any("zero_one" in tm["losses"] for tm in results["threat_models"]):
        lines += ["## Distributional robust accuracy (zero_one)", ""]
        lines += _table(
            ["eps", "p", "clean acc", "acc lower (certified)", "acc upper (attacks)", "certificate"],
            _accuracy_rows(results),
        )
    losses = list(dict.fromkeys(k for tm in results["threat_models"] for k in tm["losses"]))
    for loss in losses:
        lines += [f"## Risk band, loss `{loss}`", ""]
        lines += _table(
            ["eps", "p", "clean", "lower (best attack)", "upper (best sound)", "gap", "UB/LB"],
            _band_rows(results, loss),
        )
    for loss in losses:
        lines += [f"### Every method, loss `{loss}`", ""]
        lines += _table(
            ["eps", "p", "method", "side", "label", "value", "seconds", "passes fwd/bwd", "budget"],
            _method_rows(results, loss),
        )
    if plots:
        lines += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
    return "\n".join(lines)
