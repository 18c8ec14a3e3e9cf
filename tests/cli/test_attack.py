"""`wdrobust attack`: the table, the saved distribution, and exit code 2 on bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from wdrobust.attacks import ATTACKS
from wdrobust.cli import app
from wdrobust.pipeline.bounds import summarize
from wdrobust.primal import Distribution
from wdrobust.threat import ThreatModel

runner = CliRunner()


def test_attack_prints_the_table_and_saves_an_audited_distribution(
    digits_mlp_path: Path, digits_mlp: torch.nn.Module, digits_test: tuple, tmp_path: Path
) -> None:
    out = tmp_path / "dist.safetensors"
    args = ["attack", "--model", str(digits_mlp_path), "--attack", "wda", "--norm", "linf", "--eps", "0.1"]
    args += ["--p", "1", "--n", "60", "--option", "steps=5", "--save", str(out), "--device", "cpu"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    for text in ("clean accuracy", "distributional robust accuracy", "expected CE", "budget spent", "passes"):
        assert text in result.output
    dist = Distribution.load(out)
    assert dist.audit(ThreatModel("linf", 0.1, 1))
    x, y = digits_test
    again = ATTACKS["wda"](digits_mlp, ThreatModel("linf", 0.1, 1), steps=5).run(x[:60], y[:60])
    expected = summarize(again).distributional_accuracy
    assert dist.accuracy(digits_mlp, device="cpu") == pytest.approx(expected, abs=1e-9)
    assert f"{100 * expected:.2f} %" in result.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--attack", "fgsm"], "unknown attack"),
        (["--eps", "-1"], "eps must be >= 0"),
        (["--p", "0.5"], "p must be >= 1"),
        (["--norm", "l3"], "unknown norm"),
        (["--option", "steps"], "name=value"),
        (["--option", "colour=red"], "colour"),
        (["--n", "0"], "--n"),
    ],
)
def test_bad_input_exits_2(digits_mlp_path: Path, tmp_path: Path, extra: list[str], message: str) -> None:
    out = tmp_path / "d.safetensors"
    args = ["attack", "--model", str(digits_mlp_path), "--n", "5", "--save", str(out), *extra]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and message in result.output
    assert not out.exists()


def test_list_options_prints_the_declarations() -> None:
    result = runner.invoke(app, ["attack", "--list-options", "a3-wda"])
    assert result.exit_code == 0, result.output
    assert "options of attack 'a3-wda'" in result.output
    assert "k (int, default 9, >= 1): targets probed (capped at K - 1)" in result.output  # WDA's, k = 9
    assert "restarts (int, default 9, >= 1)" in result.output
    bad = runner.invoke(app, ["attack", "--list-options", "fgsm"])
    assert bad.exit_code == 2 and "error: unknown attack 'fgsm'" in bad.output
