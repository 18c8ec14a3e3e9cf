"""The plots of a run: every file written, one style per method in every plot, log axes where values
span decades, titles naming model, data and norm, and the worst-case image grid from stored points."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest

from wdrobust import api
from wdrobust.pipeline.document import (
    BestUpper,
    Cost,
    DataRecord,
    LossBounds,
    LowerEntry,
    Methods,
    ModelRecord,
    RunFacts,
    ThreatResult,
    UpperEntry,
)
from wdrobust.pipeline.inputs import checked_inputs
from wdrobust.report import SCHEMA, Results, plots
from wdrobust.report.sources import Sources

ARGS = {
    "eps": [0.01, 0.05],
    "p": [2, "inf"],
    "attacks": ["pgd", "wda++"],
    "certificates": ["global", "crown"],
}


def test_every_plot_is_written_with_titles(digits_mlp, digits_test, tmp_path):
    x, y = digits_test
    api.evaluate(digits_mlp, x[:40], y[:40], out=tmp_path / "run", keep_points=True, label="mlp", **ARGS)
    names = {p.name for p in (tmp_path / "run" / "plots").glob("*.png")}
    assert names == {"risk_vs_eps_ce.png", "risk_vs_eps_margin.png", "risk_vs_eps_zero_one.png",
                     "accuracy_vs_eps.png", "radius_vs_flip.png", "radii.png", "lipschitz.png",
                     "worst_case.png"}  # fmt: skip
    report = (tmp_path / "run" / "report.md").read_text()
    assert "plots/worst_case.png" in report and "plots/accuracy_vs_eps.png" in report


def test_style_is_fixed_per_method_and_distinct():
    assert plots.style("crown") == plots.style("crown")
    colours = {
        str(plots.style(m)["color"]) for m in ("global", "local", "cell", "radius", "crown", "combined")
    }
    assert len(colours) == 6
    assert plots.style("first-order")["linestyle"] == "--" and plots.style("crown")["linestyle"] == "-"
    assert plots.style("wda")["linestyle"] == ":"


@pytest.mark.parametrize(("values", "log"), [([0.1, 2.0, 300.0], True), ([0.1, 0.5], False),
                                             ([-1.0, 5.0, 500.0], False)])  # fmt: skip
def test_log_axis_only_when_positive_values_span_decades(values, log):
    assert plots._log_worthy(values) is log


def _results(threat_models: tuple[ThreatResult, ...]) -> Results:
    """A results model around the given threat models (model "m" on data "d", n = 3, linf)."""
    model = ModelRecord("m", None, "mlp", "d", None, None, (1, 2, 2), 3, None)
    return Results(SCHEMA, model, DataRecord("d", "test", None, 3), 3, 0, "linf", {}, "0" * 64, {}, 1.0,
                   {"ce": 0.1}, threat_models, Methods({}, {}), (), RunFacts(1, 1, 0.0))  # fmt: skip


def test_risk_plot_uses_a_log_axis_for_a_loose_baseline(tmp_path, monkeypatch):
    """A baseline 1e5 above the band: it is clipped off the axis, so the band stays readable."""
    cost = Cost(0.0, 0, 0)
    upper = {"crown": UpperEntry(0.5, True, cost), "global": UpperEntry(3e4, True, cost)}
    entry = LossBounds(0.1, {}, LowerEntry(0.3, 0.1, True, cost), upper, BestUpper("crown", 0.5), 0.2, 5 / 3)
    results = _results((ThreatResult("linf", 0.1, "0.1", 2.0, {"ce": entry}),))
    captured = {}
    real_save = plots._save

    def keep(fig, path):
        captured["top"] = fig.axes[0].get_ylim()[1]
        captured["title"] = fig._suptitle.get_text()
        return real_save(fig, path)

    monkeypatch.setattr(plots, "_save", keep)
    plots.risk_plot(results, "ce", tmp_path / "r.png")
    plt.close("all")
    assert captured["top"] < 1.0 and "m on d" in captured["title"] and "linf" in captured["title"]


def test_signed_values_spanning_decades_get_a_symlog_axis():
    fig, ax = plt.subplots()
    assert plots._set_scale(ax, [-5.0, -3.0, 1.0, 40.0, 500.0]) == "symlog"
    assert plots._set_scale(ax, [-5.0, -3.0, 1.0, 2.0]) == "linear"
    plt.close(fig)


def test_equal_curves_share_one_legend_entry_and_different_ones_do_not():
    a, b = np.array([0.1, 1.0, 2.0]), np.array([0.1, 1.5, 3.0])
    curves = {"local": [a, a], "crown": [b, b], "radius": [a + 1e-6, a], "combined": [b, b + 0.5]}
    assert plots.same_curves(curves) == [["local", "radius"], ["crown"], ["combined"]]


def test_equal_per_sample_series_are_drawn_once_and_a_sound_one_never_merges_with_an_estimate():
    r, other = np.array([0.01, 0.02, np.inf]), np.array([0.01, 0.03, np.inf])
    series = {"local": (True, r), "crown": (True, other), "radius": (True, r.copy()),
              "first-order": (False, r)}  # fmt: skip
    got = plots.merged(series)
    assert list(got) == ["local = radius", "crown", "first-order"]
    assert got["local = radius"][:2] == ("local", True) and got["first-order"][:2] == ("first-order", False)


def test_a_curve_orders_of_magnitude_above_the_band_is_clipped(tmp_path, monkeypatch):
    cost = Cost(0.0, 0, 0)
    upper = {"crown": UpperEntry(-4.0, True, cost), "global": UpperEntry(40.0, True, cost),
             "radius": UpperEntry(-4.0, True, cost),
             "first-order": UpperEntry(-4.5, False, cost)}  # fmt: skip
    lower = LowerEntry(-5.0, 0.1, True, cost)
    entry = LossBounds(-7.0, {}, lower, upper, BestUpper("crown", -4.0), 1.0, None)
    results = _results((ThreatResult("linf", 0.1, "0.1", math.inf, {"margin": entry}),))
    captured = {}

    def keep(fig, path):
        captured["ylim"] = fig.axes[0].get_ylim()
        captured["labels"] = [t.get_text() for t in fig.legends[0].get_texts()]
        plt.close(fig)
        return path.name

    monkeypatch.setattr(plots, "_save", keep)
    plots.risk_plot(results, "margin", tmp_path / "r.png")
    assert captured["ylim"][1] < 40.0 and captured["ylim"][0] <= -7.0
    labels = captured["labels"]
    assert "global (sound); off scale, up to 40" in labels
    assert "crown = radius (sound)" in labels and "first-order (estimate)" in labels
    assert not any("certified" in label for label in labels if "first-order" in label)
    assert not any("log" in t for t in labels)


def test_worst_case_shows_clean_perturbation_and_shifted_with_classes(digits_mlp, digits_test, tmp_path):
    x, y = digits_test
    args = ARGS | {"eps": [0.05], "p": [2]}
    api.evaluate(digits_mlp, x[:20], y[:20], out=tmp_path / "run", keep_points=True, label="mlp", **args)
    sources = Sources.load(tmp_path / "run")
    inputs = checked_inputs(digits_mlp, x[:20], y[:20], None, 20, "cpu")
    captured = {}

    def keep(fig, path):
        captured["titles"] = [ax.get_title() for ax in fig.axes if ax.get_title()]
        plt.close(fig)
        return path.name

    import wdrobust.report.plots as module

    real = module._save
    module._save = keep
    try:
        plots.worst_case_plot(sources.results, sources.records, sources.points(), tmp_path / "w.png", inputs)
    finally:
        module._save = real
    titles = captured["titles"]
    clean = [t for t in titles if t.startswith("clean #")]
    assert clean and len(clean) == len([t for t in titles if t.startswith("perturbation")])
    assert all("pred" in t and "mass" in t for t in titles if t.startswith("shifted"))
    for t in clean:
        i = int(t.split("#")[1].split()[0])
        assert f"y={int(y[i])}" in t
