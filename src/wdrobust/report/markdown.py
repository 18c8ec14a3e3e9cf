"""``report.md``: the tables a practitioner reads, rendered from the typed results (``report.document``).

Per loss, one row per threat model with the band [best lower bound, best sound upper bound], the gap and
UB/LB; then every method's value with its label: ``attained`` (lower bound from an explicit distribution
inside the ball), ``sound`` (guaranteed upper bound) or ``estimate`` (an upper-bound estimate that may be
below the truth).
"""

from __future__ import annotations

from collections.abc import Iterator

from wdrobust.report.document import LossBounds, LowerEntry, Results, p_json


def _num(value: float | None, digits: int = 4) -> str:
    """A number in ``digits`` significant digits (exponent notation from 1e4 on); None as a dash."""
    if value is None:
        return "—"
    return f"{value:.{digits}g}" if abs(value) < 1e4 else f"{value:.3e}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return [*lines, ""]


def _entries(results: Results, loss: str) -> Iterator[tuple[list[str], LossBounds]]:
    """([eps text, p], the loss's bounds) for every threat model that has the loss."""
    for tm in results.threat_models:
        entry = tm.losses.get(loss)
        if entry is not None:
            yield [tm.eps_text, str(p_json(tm.p))], entry


def _band_rows(results: Results, loss: str) -> list[list[str]]:
    rows = []
    for lead, entry in _entries(results, loss):
        ub = entry.best_sound_upper
        rows.append(
            [
                *lead,
                _num(entry.clean),
                _num(entry.lower_bound),
                "—" if ub is None else f"{_num(ub.value)} ({ub.method})",
                _num(entry.gap),
                _num(entry.ratio, 3),
            ]
        )
    return rows


def _accuracy_rows(results: Results) -> list[list[str]]:
    rows = []
    for lead, entry in _entries(results, "zero_one"):
        acc = entry.accuracy
        assert acc is not None  # every zero_one entry carries its accuracy band
        ub = entry.best_sound_upper
        rows.append(
            [*lead, _num(acc.clean), _num(acc.lower), _num(acc.upper), "—" if ub is None else ub.method]
        )
    return rows


def _lower_row(lead: list[str], name: str, v: LowerEntry, cost: bool) -> list[str]:
    """A lower-bound row; with ``cost`` its seconds and passes (a single attack job), else blank."""
    audit = "ok" if v.budget_ok else "EXCEEDED"
    seconds, passes = (f"{v.cost.seconds:.1f}", f"{v.cost.forward_passes}/{v.cost.backward_passes}")
    return [
        *lead,
        name,
        "lower",
        "attained",
        _num(v.value),
        *((seconds, passes) if cost else ("", "")),
        audit,
    ]


def _method_rows(results: Results, loss: str) -> list[list[str]]:
    rows = []
    for lead, entry in _entries(results, loss):
        rows += [_lower_row(lead, name, v, cost=True) for name, v in entry.lower.items()]
        if entry.best_lower is not None:
            rows.append(_lower_row(lead, "best of all attacks", entry.best_lower, cost=False))
        for name, u in entry.upper.items():
            label = "sound" if u.sound else "estimate"
            rows.append([*lead, name, "upper", label, _num(u.value), f"{u.cost.seconds:.1f}", "", ""])
    return rows


def render_markdown(results: Results, plots: list[str]) -> str:
    """The report.md text of a run's results; ``plots`` are file names relative to the run folder."""
    model, data = results.model, results.data
    lines = [
        f"# Wasserstein distributional robustness of `{model.name}` on `{data.name}`",
        "",
        f"- samples: n = {results.n} (first n of split `{data.split}`), seed {results.seed}",
        f"- threat: norm `{results.norm}`; transport cost ||x - x'|| (labels fixed)",
        f"- clean accuracy {_num(results.clean_accuracy)}; clean losses "
        + ", ".join(f"{k} {_num(v)}" for k, v in results.clean_loss.items()),
        f"- configuration hash `{results.config_hash[:16]}`; "
        + ", ".join(f"{k} {v}" for k, v in results.versions.items()),
        "",
        "Lower bounds are **attained**: an explicit distribution inside the Wasserstein ball",
        "(budget audited) reaches them. Upper bounds are **sound** (guaranteed) or **estimates**",
        "(may lie below the truth; never used for the band).",
        "The true worst-case risk lies in [lower, sound upper].",
        "",
    ]
    if results.incomplete_jobs:
        lines += [f"**Incomplete jobs (left out):** {', '.join(results.incomplete_jobs)}", ""]
    if "zero_one" in results.losses:
        lines += ["## Distributional robust accuracy (zero_one)", ""]
        lines += _table(
            ["eps", "p", "clean acc", "acc lower (certified)", "acc upper (attacks)", "certificate"],
            _accuracy_rows(results),
        )
    for loss in results.losses:
        lines += [f"## Risk band, loss `{loss}`", ""]
        lines += _table(
            ["eps", "p", "clean", "lower (best attack)", "upper (best sound)", "gap", "UB/LB"],
            _band_rows(results, loss),
        )
    for loss in results.losses:
        lines += [f"### Every method, loss `{loss}`", ""]
        lines += _table(
            ["eps", "p", "method", "side", "label", "value", "seconds", "passes fwd/bwd", "budget"],
            _method_rows(results, loss),
        )
    if plots:
        lines += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
    return "\n".join(lines)
