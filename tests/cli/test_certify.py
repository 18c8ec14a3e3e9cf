"""`wdrobust certify`: a table per method with sound/estimate labels; bad input exits with code 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from wdrobust.certify import CERTIFICATES
from wdrobust.cli import app
from wdrobust.cli.certify import parse_methods, parse_options

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


def test_certify_options_go_to_the_methods_that_declare_them() -> None:
    assert parse_options(["boxes=interval"], ["local", "global", "cell"]) == {
        "local": {"boxes": "interval"},
        "global": {},
        "cell": {"boxes": "interval"},
    }
    prefixed = parse_options(["bab.budget=5", "tol=1/100"], ["bab", "crown"])
    assert prefixed == {"bab": {"budget": 5.0, "tol": 0.01}, "crown": {}}
    assert parse_options(["radii=0.1,0.5"], ["local"]) == {"local": {"radii": (0.1, 0.5)}}
    for items, names, msg in [
        (["budget=5"], ["local"], "no method among local has this option"),
        (["bab.budget=5"], ["crown"], "'bab' is not among the methods"),
        (["crown.alpha_steps=-1"], ["crown"], "option alpha_steps must be >= 0, got '-1'"),
        (["bab.bab=mode"], ["bab"], "option bab expects a table"),
        (["budget"], ["bab"], "name=value"),
    ]:
        with pytest.raises(ValueError, match=msg):
            parse_options(items, names)


def test_certify_option_flag_and_listing(digits_mlp_path: Path) -> None:
    base = ["certify", "--model", str(digits_mlp_path), "--n", "4", "--device", "cpu"]
    res = runner.invoke(app, [*base, "--method", "local", "--option", "boxes=nope"])
    assert res.exit_code == 2 and "error: certificate 'local': option boxes must be one of" in res.output
    res = runner.invoke(app, [*base, "--method", "crown,local", "--option", "crown.bisection=2"])
    assert res.exit_code == 0, res.output
    listing = runner.invoke(app, ["certify", "--list-options", "bab,local"])
    assert listing.exit_code == 0, listing.output
    assert (
        "options of certificate 'bab'" in listing.output
        and "budget (float, default 30.0, > 0)" in listing.output
    )
    assert "boxes (str, default 'auto', one of auto, interval, crown)" in listing.output
    bad = runner.invoke(app, ["certify", "--list-options", "bab,nope"])
    assert bad.exit_code == 2 and "error: unknown certificate 'nope'" in bad.output
