"""Bad input on the command line: one `error: ...` line, exit code 2, no traceback, no partial output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

from wdrobust import nets
from wdrobust.attacks import ATTACKS
from wdrobust.cli import app
from wdrobust.cli.attack import parse_options
from wdrobust.cli.errors import user_errors

runner = CliRunner()
COMMANDS = [c.name for c in app.registered_commands]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def tiny_model(path: Path, input_shape: list[int], classes: int = 10) -> str:
    """A small untrained MLP checkpoint for the given sample shape (saved by nets.save)."""
    nets.save(nets.build("mlp", seed=0, input_shape=input_shape, num_classes=classes, widths=[8]), path)
    return str(path)


def npz(path: Path, features: int, classes: int, n: int = 40) -> str:
    """A tabular .npz file of n samples with the given number of features and labels 0..classes-1."""
    x = np.random.default_rng(0).random((n, features)).astype(np.float32)
    np.savez(path, x=x, y=np.arange(n) % classes)
    return str(path)


def fails(args: list[str], message: str) -> None:
    """The command exits with code 2 and prints exactly one line, ``error: ...`` containing message."""
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert message in lines[0], lines[0]


@pytest.mark.parametrize("command", ["attack", "certify", "evaluate"])
def test_unknown_or_missing_device(command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = tiny_model(tmp_path / "m.safetensors", [1, 8, 8])
    base = [command, "--model", model, "--n", "3"]
    if command == "evaluate":
        base += ["--out", "runs/bad", "--attacks", "pgd", "--certificates", "global"]
    fails([*base, "--device", "tpu"], "unknown device 'tpu'")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    fails([*base, "--device", "cuda"], "CUDA is not available")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("command", ["attack", "certify"])
def test_model_and_data_that_do_not_fit(command: str, tmp_path: Path) -> None:
    digits_model = tiny_model(tmp_path / "digits.safetensors", [1, 8, 8])
    tabular_model = tiny_model(tmp_path / "tab.safetensors", [64], classes=3)
    narrow_model = tiny_model(tmp_path / "narrow.safetensors", [30], classes=3)
    save = tmp_path / "d.safetensors"
    extra = ["--save", str(save)] if command == "attack" else []
    big = npz(tmp_path / "big.npz", 28 * 28, 10)
    fails([command, "--model", digits_model, "--data", big, "--n", "5", *extra], "(1, 8, 8)")
    fails([command, "--model", digits_model, "--data", big, "--n", "5"], "(784,)")
    narrow = [command, "--model", narrow_model, "--data", "digits", "--n", "5"]
    fails(narrow, "shape (30,), the data's are (1, 8, 8)")
    many = npz(tmp_path / "many.npz", 64, 5)
    fails([command, "--model", tabular_model, "--data", many, "--n", "40"], "labels must lie in [0, 3)")
    assert not save.exists()


@pytest.mark.parametrize("command", ["attack", "certify"])
def test_overflowing_numbers(command: str, tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "m.safetensors", [1, 8, 8])
    base = [command, "--model", model, "--n", "3", "--device", "cpu"]
    fails([*base, "--eps", "1e400"], "eps: '1e400' overflows a float")
    fails([*base, "--p", "1e400"], "p: '1e400' overflows a float")
    fails([*base, "--eps", "1e39"], "eps must be finite")
    fails([*base, "--eps", "1e200", "--p", "2"], "eps must be finite")
    fails([*base, "--eps", "1e30", "--p", "20"], "eps ** p overflows")
    assert runner.invoke(app, [*base, "--eps", "0.1", "--p", "inf"]).exit_code == 0


def test_attack_options_are_typed(tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "m.safetensors", [1, 8, 8])
    base = ["attack", "--model", model, "--n", "3", "--device", "cpu"]
    fails([*base, "--option", "steps=abc"], "attack 'wda': option steps expects an integer, got 'abc'")
    fails([*base, "--option", "step_size=fast"], "attack 'wda': option step_size: cannot parse 'fast'")
    fails([*base, "--option", "steps=0"], "attack 'wda': option steps must be >= 1, got '0'")
    fails([*base, "--attack", "pgd", "--option", "random_start=maybe"], "option random_start expects true")
    fails([*base, "--option", "seed=1"], "attack 'wda' has no option 'seed'")
    assert parse_options(["steps=5", "step-size=1/2", "target=dual_norm"], "wda") == {
        "steps": 5,
        "step_size": 0.5,
        "target": "dual_norm",
    }
    assert parse_options(["random_start=False", "step_size=0.5"], "pgd") == {
        "random_start": False,
        "step_size": 0.5,
    }
    assert ATTACKS["a3-wda"].option_table()["discard"].type is float
    assert "seed" not in ATTACKS["wda"].option_table()


def test_certify_method_list_rejects_empty_items(digits_mlp_path: Path) -> None:
    base = ["certify", "--model", str(digits_mlp_path), "--n", "3", "--device", "cpu"]
    fails([*base, "--method", "global,,local"], "--method: empty item")
    fails([*base, "--method", "global,"], "--method: empty item")
    fails([*base, "--method", ""], "--method: empty item")


def test_key_errors_are_bugs_not_user_errors() -> None:
    @user_errors
    def broken() -> None:
        raise KeyError("internal")

    @user_errors
    def bad_input() -> None:
        raise ValueError("bad input\nsecond line")

    with pytest.raises(KeyError):
        broken()
    with pytest.raises(typer.Exit) as exit_info:
        bad_input()
    assert exit_info.value.exit_code == 2


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_short_help_option(command: str | None) -> None:
    args = [] if command is None else [command]
    short, long = runner.invoke(app, [*args, "-h"]), runner.invoke(app, [*args, "--help"])
    assert short.exit_code == 0 and long.exit_code == 0, short.output
    assert short.output == long.output and "Usage" in short.output
