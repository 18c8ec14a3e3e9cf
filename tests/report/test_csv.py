"""The per-sample CSV (``wdrobust report RUN --format csv``): one row per sample, and at p = inf its
statuses count exactly the distributional accuracy band of results.json."""

from __future__ import annotations

import csv
import json

import pytest
from _cli import invoke

from wdrobust.report import Results

FLAGS = ["--n", "20", "--batch-size", "10", "--offset", "5", "--eps", "0.02,0.1", "--p", "2,inf",
         "--attacks", "wda++", "--certificates", "crown,first-order", "--quiet"]  # fmt: skip


@pytest.fixture(scope="module")
def run(digits_mlp_path, tmp_path_factory):
    folder = tmp_path_factory.mktemp("csv")
    result = invoke("evaluate", "--model", str(digits_mlp_path), "--out", str(folder / "run"), *FLAGS)
    assert result.exit_code == 0, result.output
    return folder / "run"


def test_one_row_per_sample_with_the_documented_columns(run):
    result = invoke("report", str(run), "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((run / "samples.csv").open()))
    assert list(rows[0]) == ["index", "label", "clean_correct", "flip_distance", "certified_radius",
                             "status_eps_0.02_p_inf", "status_eps_0.1_p_inf"]  # fmt: skip
    assert [int(r["index"]) for r in rows] == list(range(5, 25))
    for r in rows:
        flip, radius = float(r["flip_distance"]), float(r["certified_radius"])
        if r["clean_correct"] == "1":
            assert radius <= flip  # sound radius below the attained flip (brute-force fact of the run)
        else:
            assert flip == 0 and {r["status_eps_0.02_p_inf"], r["status_eps_0.1_p_inf"]} == {"attacked"}


def test_statuses_at_p_inf_count_the_accuracy_band(run):
    invoke("report", str(run), "--format", "csv")
    rows = list(csv.DictReader((run / "samples.csv").open()))
    results = Results.from_dict(json.loads((run / "results.json").read_text()))
    for eps in ("0.02", "0.1"):
        status = [r[f"status_eps_{eps}_p_inf"] for r in rows]
        band = results.bounds("zero_one", eps, "inf").accuracy
        assert status.count("certified") / len(rows) == pytest.approx(band.lower)
        assert 1 - status.count("attacked") / len(rows) == pytest.approx(band.upper)
        assert set(status) <= {"certified", "attacked", "open"}


def test_out_writes_elsewhere(run, tmp_path):
    result = invoke("report", str(run), "--format", "csv", "--out", str(tmp_path / "s.csv"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "s.csv").read_text().startswith("index,label,clean_correct,")
