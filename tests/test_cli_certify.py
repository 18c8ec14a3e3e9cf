"""`wdrobust certify`: a table per method with sound/estimate labels; bad input exits with code 2."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from wdrobust.certify import CERTIFICATES
from wdrobust.cli import app
from wdrobust.cli.certify import parse_methods

runner = CliRunner()


def test_certify_prints_bounds_per_method(digits_mlp_path: Path) -> None:
    args = ["certify", "--model", str(digits_mlp_path), "--method", "global,first-order", "--n", "30"]
    res = runner.invoke(app, [*args, "--norm", "l2", "--eps", "0.3", "--p", "2", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert "global" in res.output and "first-order" in res.output
    assert "sound" in res.output and "estimate" in res.output
    zero_one = runner.invoke(app, [*args, "--loss", "zero_one", "--device", "cpu"])
    assert zero_one.exit_code == 0, zero_one.output


def test_certify_bad_input_exits_2(digits_mlp_path: Path) -> None:
    base = ["certify", "--model", str(digits_mlp_path), "--n", "5", "--device", "cpu"]
    cases = [
        (["--method", "nope"], "unknown certificate"),
        (["--loss", "dlr"], "cannot be certified"),
        (["--norm", "l3"], "unknown norm"),
        (["--n", "0"], "--n"),
    ]
    for extra, msg in cases:
        res = runner.invoke(app, [*base, *extra])
        assert res.exit_code == 2 and msg in res.output, res.output


def test_parse_methods() -> None:
    assert parse_methods("all") == list(CERTIFICATES)
    assert parse_methods("local, milp,local") == ["local", "milp"]
