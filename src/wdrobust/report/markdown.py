"""``report.md``: the tables a practitioner reads, rendered from the typed results (``pipeline.document``).

Per loss, one row per threat model with the band [best lower bound, best sound upper bound], the gap and
UB/LB; then every method's value with its label: ``attained`` (lower bound from an explicit distribution
inside the Wasserstein ball), ``sound`` (guaranteed upper bound) or ``estimate`` (an upper-bound estimate
that may be below the truth); then what each method cost, once per method. Numbers go through
``report.numbers``; every table with a dash says under it why the value is missing.
"""

from __future__ import annotations

from collections.abc import Iterator

from wdrobust.pipeline.aggregate import COMBINED
from wdrobust.pipeline.document import LossBounds, LowerEntry, Results, p_json
from wdrobust.report.numbers import MISSING, number, seconds


class Dashes:
    """The reasons for the dashes of one table, in order of first use."""

    def __init__(self) -> None:
        self.reasons: dict[str, None] = {}

    def num(self, value: float | None, reason: str, digits: int = 4) -> str:
        """``number(value)``; a dash for None, noting ``reason``."""
        if value is None:
            self.reasons[reason] = None
        return number(value, digits)

    def dash(self, reason: str) -> str:
        """A dash, noting ``reason``."""
        self.reasons[reason] = None
        return MISSING

    def footnote(self) -> list[str]:
        """The line under the table explaining its dashes (none without dashes)."""
        return [f"{MISSING}: " + "; ".join(self.reasons) + ".", ""] if self.reasons else []


def _table(header: list[str], rows: list[list[str]], dashes: Dashes | None = None) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return [*lines, "", *(dashes.footnote() if dashes is not None else [])]


def _entries(results: Results, loss: str) -> Iterator[tuple[list[str], LossBounds]]:
    """([eps text, p], the loss's bounds) for every threat model that has the loss."""
    for tm in results.threat_models:
        entry = tm.losses.get(loss)
        if entry is not None:
            yield [tm.eps_text, str(p_json(tm.p))], entry


def _band_rows(results: Results, loss: str, dashes: Dashes) -> list[list[str]]:
    rows = []
    for lead, entry in _entries(results, loss):
        ub, lb = entry.best_sound_upper, entry.lower_bound
        if entry.ratio is None and lb is not None and entry.upper_bound is not None:
            ratio = dashes.dash("UB/LB is defined only where the lower bound is > 0 (read the gap instead)")
        else:
            ratio = dashes.num(entry.ratio, "UB/LB needs both bounds", 3)
        rows.append(
            [
                *lead,
                number(entry.clean),
                dashes.num(lb, "no attack bounds this loss"),
                dashes.dash("no sound certificate bounds this loss")
                if ub is None
                else f"{number(ub.value)} ({ub.method})",
                dashes.num(entry.gap, "the gap needs both bounds"),
                ratio,
            ]
        )
    return rows


def _accuracy_rows(results: Results, dashes: Dashes) -> list[list[str]]:
    rows = []
    for lead, entry in _entries(results, "zero_one"):
        acc = entry.accuracy
        assert acc is not None  # every zero_one entry carries its accuracy band
        ub = entry.best_sound_upper
        rows.append(
            [
                *lead,
                number(acc.clean),
                dashes.num(acc.lower, "no sound certificate ran"),
                dashes.num(acc.upper, "no attack ran"),
                dashes.dash("no sound certificate ran") if ub is None else ub.method,
            ]
        )
    return rows


def _lower_row(lead: list[str], name: str, v: LowerEntry, dashes: Dashes, pooled: bool) -> list[str]:
    """A lower-bound row: its job's seconds and passes, or (``pooled``: the best of all attacks) dashes."""
    audit = "ok" if v.budget_ok else "EXCEEDED"
    if pooled:
        why = "best of all attacks: pools the jobs above, no cost of its own"
        cost = [dashes.dash(why), MISSING]
    else:
        cost = [seconds(v.cost.seconds), f"{v.cost.forward_passes}/{v.cost.backward_passes}"]
    return [*lead, name, "lower", "attained", number(v.value), *cost, audit]


def _method_rows(results: Results, loss: str, dashes: Dashes) -> list[list[str]]:
    rows = []
    for lead, entry in _entries(results, loss):
        rows += [_lower_row(lead, name, v, dashes, pooled=False) for name, v in entry.lower.items()]
        if entry.best_lower is not None:
            rows.append(_lower_row(lead, "best of all attacks", entry.best_lower, dashes, pooled=True))
        for name, u in entry.upper.items():
            label = "sound" if u.sound else "estimate"
            why = "certificates: one run serves every (eps, p), cost under Cost per method; they move no mass"
            rows.append([*lead, name, "upper", label, number(u.value), dashes.dash(why), MISSING, MISSING])
    return rows


def _combined_of(results: Results) -> tuple[str, ...] | None:
    """The sound certificates the combined certificate is the minimum of (None: no combined bound)."""
    for tm in results.threat_models:
        for entry in tm.losses.values():
            if COMBINED in entry.upper:
                return entry.upper[COMBINED].methods
    return None


def _cost_rows(results: Results, dashes: Dashes) -> list[list[str]]:
    """Per attack: its jobs, summed seconds and passes; per certificate: its seconds (one run for all
    (eps, p)); combined: nothing (a pointwise minimum of the others)."""
    rows = [
        [name, "lower", "attained", str(a.jobs), seconds(a.cost.seconds),
         f"{a.cost.forward_passes}/{a.cost.backward_passes}", ""]
        for name, a in results.methods.attacks.items()
    ]  # fmt: skip
    why = "certificates' passes are not counted"
    for name, c in results.methods.certificates.items():
        label = "sound" if c.sound else "estimate"
        rows.append([name, "upper", label, "1", seconds(c.seconds), dashes.dash(why), c.note])
    combined = _combined_of(results)
    if combined is not None:
        note = f"pointwise minimum of {', '.join(combined)}: no computation of its own"
        rows.append([COMBINED, "upper", "sound", MISSING, "0", MISSING, note])
        dashes.reasons["combined runs no job of its own"] = None
    return rows


def render_markdown(results: Results, plots: list[str]) -> str:
    """The report.md text of a run's results; ``plots`` are file names relative to the run folder."""
    model, data = results.model, results.data
    lines = [
        f"# Wasserstein distributional robustness of `{model.short_name}` on `{data.short_name}`",
        "",
        f"- samples: n = {results.n} (first n of split `{data.split}`), seed {results.seed}",
        f"- threat: norm `{results.norm}`; transport cost ||x - x'|| (labels fixed)",
        f"- clean accuracy {number(results.clean_accuracy)}; clean losses "
        + ", ".join(f"{k} {number(v)}" for k, v in results.clean_loss.items()),
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
        dashes = Dashes()
        rows = _accuracy_rows(results, dashes)
        header = ["eps", "p", "clean acc", "acc lower (certified)", "acc upper (attacks)", "certificate"]
        lines += _table(header, rows, dashes)
    for loss in results.losses:
        lines += [f"## Risk band, loss `{loss}`", ""]
        dashes = Dashes()
        rows = _band_rows(results, loss, dashes)
        header = ["eps", "p", "clean", "lower (best attack)", "upper (best sound)", "gap", "UB/LB"]
        lines += _table(header, rows, dashes)
    for loss in results.losses:
        lines += [f"### Every method, loss `{loss}`", ""]
        dashes = Dashes()
        rows = _method_rows(results, loss, dashes)
        header = ["eps", "p", "method", "side", "label", "value", "seconds", "passes fwd/bwd", "budget"]
        lines += _table(header, rows, dashes)
    lines += ["## Cost per method", ""]
    dashes = Dashes()
    rows = _cost_rows(results, dashes)
    lines += _table(["method", "side", "label", "jobs", "seconds", "passes fwd/bwd", "note"], rows, dashes)
    if plots:
        lines += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
    return "\n".join(lines)
