"""`wdrobust evaluate` / `wdrobust report` on the command line: help, bad input (exit code 2, one line,
no run folder left), output paths printed, report re-rendering."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from wdrobust.cli import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    """A fresh working folder."""
    monkeypatch.chdir(tmp_path)


def invoke(*args):
    return runner.invoke(app, list(args))


#: Cheap methods; a test's own --attacks/--certificates come later and win.
CHEAP = ("--attacks", "wda++", "--certificates", "global")


def test_help_documents_every_flag():
    result = invoke("evaluate", "--help")
    assert result.exit_code == 0
    for flag in ("--config", "--model", "--data", "--n", "--norm", "--eps", "--p", "--attacks",
                 "--certificates", "--out", "--force", "--quiet", "--seed", "--batch-size"):  # fmt: skip
        assert flag in result.output


def _npz(tmp_path, x, y):
    path = tmp_path / "bad.npz"
    np.savez(path, x=x, y=y)
    return str(path)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--model", "no/such.safetensors"), "unknown model"),
        (("--data", "nosuchdata"), "nosuchdata"),
        (("--attacks", "nosuch"), "unknown attack 'nosuch'"),
        (("--certificates", "nosuch"), "unknown certificate 'nosuch'"),
        (("--eps", "-0.1"), "eps must be >= 0"),
        (("--p", "0.5"), "p must be >= 1"),
    ],
)
def test_bad_input_exit_2_no_folder(tmp_path, args, message):
    result = invoke("evaluate", *CHEAP, *args, "--out", "runs/bad", "--quiet")
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "runs" / "bad").exists()


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("shape", "expects inputs of shape (1, 8, 8)"),
        ("nan", "NaN"),
        ("labels", "labels must lie in [0, 10)"),
    ],
)
def test_bad_data_exit_2_no_folder(tmp_path, kind, message):
    rng = np.random.default_rng(0)
    x = rng.random((80, 64 if kind != "shape" else 30)).astype(np.float32)
    y = np.arange(80) % (11 if kind == "labels" else 10)  # 11 classes for a 10-class model
    if kind == "nan":
        x[:, 3] = np.nan
    result = invoke("evaluate", *CHEAP, "--data", _npz(tmp_path, x, y), "--out", "runs/bad", "--quiet")
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "runs" / "bad").exists()


def test_evaluate_prints_outputs_then_report_rerenders(tmp_path):
    args = ("--n", "6", "--batch-size", "6", "--eps", "0.1", "--p", "inf", "--attacks", "wda++",
            "--certificates", "global,radius", "--out", "runs/cli")  # fmt: skip
    result = invoke("evaluate", *args)
    assert result.exit_code == 0, result.output
    assert "results: runs/cli/results.json" in result.output
    assert "report:  runs/cli/report.md" in result.output
    assert "plots:" in result.output
    (tmp_path / "runs/cli/report.md").unlink()
    again = invoke("report", "runs/cli")
    assert again.exit_code == 0, again.output
    assert (tmp_path / "runs/cli/report.md").is_file()
    assert invoke("report", "runs/nothing").exit_code == 2
    changed = invoke("evaluate", *args, "--seed", "3")
    assert changed.exit_code == 2 and "different configuration" in changed.output


def test_bad_method_option_exit_2_no_folder(tmp_path):
    path = tmp_path / "eval.toml"
    path.write_text('attacks = ["wda++"]\ncertificates = ["global"]\n[attack_options."wda++"]\nnosuch = 1\n')
    result = invoke("evaluate", "--config", str(path), "--out", "runs/bad", "--quiet")
    assert result.exit_code == 2, result.output
    assert "attack 'wda++' has no option 'nosuch': accepted k, max_steps" in result.output
    assert not (tmp_path / "runs" / "bad").exists()


def test_evaluate_ends_with_the_headline(tmp_path):
    """Without --quiet the run ends with the accuracy and CE bands per (eps, p), as in results.json, then
    the output paths; with --quiet only the paths."""
    flags = ("--n", "8", "--eps", "0.02", "--p", "1,inf", "--attacks", "wda++,pgd",
             "--certificates", "radius")  # fmt: skip
    result = invoke("evaluate", *flags, "--out", str(tmp_path / "run"))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("clean accuracy"))
    rows = [line.split() for line in lines[start + 3 : start + 5]]
    assert [r[:2] for r in rows] == [["0.02", "1"], ["0.02", "inf"]], lines
    doc = json.loads((tmp_path / "run" / "results.json").read_text())
    for row, tm in zip(rows, doc["threat_models"], strict=True):
        band = tm["losses"]["zero_one"]["accuracy"]
        certified, attacked = float(row[2]), float(row[3])
        assert certified == pytest.approx(band["lower"], abs=5e-4) and certified <= attacked
        assert attacked == pytest.approx(band["upper"], abs=5e-4)
    assert lines[-1].startswith("plots:")
    quiet = invoke("evaluate", *flags, "--out", str(tmp_path / "run"), "--quiet")
    assert quiet.exit_code == 0 and "clean accuracy" not in quiet.output
