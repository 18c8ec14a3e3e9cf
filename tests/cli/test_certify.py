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


def test_method_all_skips_what_does_not_apply(tmp_path):
    """`--method all` on a GELU MLP: the ReLU-only certificates are skipped with a reason, the rest run."""
    from wdrobust import nets

    path = tmp_path / "gelu.safetensors"
    nets.save(nets.build("mlp", seed=0, input_shape=[1, 8, 8], widths=[8], activation="gelu"), path)
    from typer.testing import CliRunner

    from wdrobust.cli import app

    result = CliRunner().invoke(app, ["certify", "--model", str(path), "--method", "all", "--n", "3"])
    assert result.exit_code == 0, result.output
    assert "skipped cell:" in result.output and "skipped milp:" in result.output
    assert "crown" in result.output and "local" in result.output
