"""What a run records about its model (results.json) and its RobustBench-style model_info record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _cli import invoke, one_line_error


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


@pytest.mark.slow
def test_results_name_the_model_and_robustbench_record(tmp_path, digits_mlp_path):
    pytest.importorskip("pyautoattack")
    flags = ["--n", "4", "--batch-size", "4", "--eps", "0.1", "--p", "inf", "--attacks", "autoattack",
             "--certificates", "crown", "--quiet", "--label", "digits MLP"]  # fmt: skip
    result = invoke("evaluate", "--out", "run", *flags)
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    model = results["model"]
    named = (model["name"], model["label"], model["arch"], model["dataset"])
    assert named == ("digits MLP", "digits MLP", "mlp", "digits")
    assert len(model["sha256"]) == 64 and Path(model["path"]).name == digits_mlp_path.name
    result = invoke("report", "run", "--format", "robustbench")
    assert result.exit_code == 0, result.output
    info = json.loads((tmp_path / "run" / "model_info.json").read_text())
    assert (info["name"], info["dataset"], info["architecture"], info["threat_model"]) == (
        "digits MLP", "digits", "mlp", "Linf")  # fmt: skip
    assert info["eps"] == "0.1" and info["clean_acc"] == f"{100 * results['clean']['accuracy']:.2f}"
    aa = next(tm for tm in results["threat_models"] if tm["eps_text"] == "0.1" and tm["p"] == "inf")
    aa_risk = aa["losses"]["zero_one"]["lower"]["attacks"]["autoattack"]["value"]
    assert info["autoattack_acc"] == f"{100 * (1 - aa_risk):.2f}"
    assert float(info["autoattack_acc"]) <= float(info["clean_acc"])
    rows = info["wdrobust"]["distributional"]
    assert [(r["eps"], r["p"]) for r in rows] == [("0.1", "inf")]
    for row in rows:
        assert row["accuracy_certified"] <= row["accuracy_attacked"]
        assert row["risk"]["ce"]["lower"] <= row["risk"]["ce"]["upper"]


def test_robustbench_record_without_autoattack_and_bad_format(tmp_path):
    flags = ["--n", "4", "--batch-size", "4", "--eps", "0.1", "--p", "inf", "--attacks", "wda++",
             "--certificates", "global", "--quiet"]  # fmt: skip
    assert invoke("evaluate", "--out", "run", *flags).exit_code == 0
    result = invoke("report", "run", "--format", "robustbench", "--out", "info.json")
    assert result.exit_code == 0, result.output
    info = json.loads((tmp_path / "info.json").read_text())
    assert info["autoattack_acc"] is None and info["wdrobust"]["autoattack_samples"] is None
    one_line_error(invoke("report", "run", "--format", "xlsx"), "unknown --format 'xlsx'")


def test_robustbench_record_names_a_checkpoint_by_its_stem_not_its_path(tmp_path, digits_mlp_path):
    flags = ["--n", "4", "--batch-size", "4", "--eps", "0.1", "--p", "inf", "--attacks", "wda++",
             "--certificates", "global", "--quiet"]  # fmt: skip
    assert invoke("evaluate", "--model", str(digits_mlp_path), "--out", "run", *flags).exit_code == 0
    assert invoke("report", "run", "--format", "robustbench").exit_code == 0
    info = json.loads((tmp_path / "run" / "model_info.json").read_text())
    assert (info["name"], info["dataset"]) == (digits_mlp_path.stem, "digits")
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["model"]["path"] == str(digits_mlp_path)  # the path stays in results.json only
    report = (tmp_path / "run" / "report.md").read_text()
    title = f"# Wasserstein distributional robustness of `{digits_mlp_path.stem}` on `digits`"
    assert report.startswith(title)
