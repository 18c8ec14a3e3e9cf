"""The command line: --version, every subcommand's help, and a `wdrobust train` round trip."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import torch
from typer.testing import CliRunner

from wdrobust import __version__, nets
from wdrobust.cli import app
from wdrobust.train import accuracy

runner = CliRunner()
COMMANDS = [(c.name, c.callback) for c in app.registered_commands]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"wdrobust {__version__}"


def test_cli_start_up_skips_heavy_imports():
    """matplotlib and scipy are imported only by the subcommands that need them."""
    code = "import sys, wdrobust.cli.app; print(sorted({m.split('.')[0] for m in sys.modules}))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "'wdrobust'" in loaded.stdout
    assert "matplotlib" not in loaded.stdout and "scipy" not in loaded.stdout


@pytest.mark.parametrize(("name", "callback"), COMMANDS, ids=[name for name, _ in COMMANDS])
def test_help_describes_each_subcommand(name, callback):
    assert callback.__doc__, f"wdrobust {name} has no docstring"
    summary = " ".join(callback.__doc__.strip().splitlines()[0].split())
    assert name in runner.invoke(app, ["--help"]).output
    result = runner.invoke(app, [name, "--help"])
    assert result.exit_code == 0
    assert summary in " ".join(result.output.split())


def test_train_round_trip(tmp_path, digits_mlp, digits_test):
    result = runner.invoke(
        app, ["train", "--data", "digits", "--arch", "mlp", "--out", "m.safetensors", "-q"]
    )
    assert result.exit_code == 0, result.output
    assert "epoch" not in result.output  # --quiet: no per-epoch lines
    printed = float(re.search(r"clean test accuracy: ([\d.]+)%", result.output).group(1))
    assert "checkpoint: m.safetensors" in result.output
    model = nets.load(tmp_path / "m.safetensors", device="cpu")
    x, y = digits_test
    acc = accuracy(model, x, y)
    assert acc >= 0.95 and printed == pytest.approx(100 * acc, abs=0.006)
    meta = nets.load_metadata(tmp_path / "m.safetensors")["metadata"]
    assert meta["data"] == "digits" and meta["val_accuracy"] >= 0.95
    assert meta["train"] | {"epochs": 50} == meta["train"]  # auto epochs on digits: 50
    assert (meta["train"]["schedule"], meta["train"]["val_fraction"]) == ("cosine", 0.1)
    # the default model's recipe (constant rate, no validation split) from the CLI: the same weights
    legacy = ["--schedule", "constant", "--val-fraction", "0", "--lr", "0.001", "--epochs", "50"]
    result = runner.invoke(app, ["train", "--out", "d.safetensors", "-q", *legacy])
    assert result.exit_code == 0, result.output
    with torch.no_grad():
        assert torch.equal(nets.load(tmp_path / "d.safetensors", device="cpu")(x), digits_mlp(x))


def test_train_prints_one_line_per_epoch(tmp_path):
    result = runner.invoke(app, ["train", "--epochs", "3", "--widths", "8", "--out", "m.safetensors"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in lines] == ["1/3", "2/3", "3/3"]
    assert all(
        re.search(r"loss [\d.]+  acc [\d.]+ %  val loss [\d.]+  val acc [\d.]+ %  lr ", x) for x in lines
    )


def test_train_pgd_records_its_options(tmp_path):
    args = [
        "train",
        "--epochs",
        "1",
        "--adversarial",
        "pgd",
        "--eps",
        "8/255",
        "--norm",
        "l2",
        "--steps",
        "2",
    ]
    result = runner.invoke(app, [*args, "--widths", "16", "--activation", "silu"])
    assert result.exit_code == 0, result.output
    path = tmp_path / "runs" / "models" / "digits-mlp-pgd.safetensors"
    header = nets.load_metadata(path)
    assert header["kwargs"]["widths"] == [16] and header["kwargs"]["activation"] == "silu"
    expected = {"epochs": 1, "lr": 3e-3, "batch_size": 64, "seed": 0, "adversarial": "pgd", "norm": "l2"}
    expected |= {"schedule": "cosine", "val_fraction": 0.1}
    assert header["metadata"]["train"] == expected | {"steps": 2, "eps": pytest.approx(8 / 255)}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--out", "m.pt"], "must end in .safetensors"),
        (["--activation", "tanh"], "unknown activation 'tanh'"),
        (["--arch", "vgg"], "unknown architecture 'vgg'"),
        (["--widths", "12,x"], "--widths must be comma-separated integers"),
        (["--arch", "resnet18", "--widths", "8"], "has no option widths"),
        (["--data", "nosuch"], "unknown data set 'nosuch'"),
        (["--adversarial", "pgd", "--eps", "abc"], "cannot parse 'abc'"),
        (["--epochs", "0"], "epochs must be >= 1"),
        (["--eps", "0.3"], "apply only with --adversarial pgd"),
        (["--device", "tpu9"], "unknown device 'tpu9'"),
        (["--arch", "mlp", "--hidden", "8"], "has no option hidden"),
    ],
)
def test_train_bad_input_exit_2_without_checkpoint(tmp_path, args, message):
    result = runner.invoke(app, ["train", *args])
    assert result.exit_code == 2
    assert result.output.strip() == result.output.strip().splitlines()[0]
    assert message in result.output
    assert not list(tmp_path.glob("m.*")) and not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--arch", "cnn", "--widths", "4,8", "--hidden", "16", "--activation", "elu"],
            {"widths": [4, 8], "hidden": 16, "activation": "elu"},
        ),
        (["--arch", "vit_tiny", "--depth", "1"], {"depth": 1}),
        (
            ["--arch", "wide_resnet", "--depth", "10", "--widen-factor", "1", "--batch-size", "256"],
            {"depth": 10, "widen_factor": 1},
        ),
    ],
    ids=["cnn", "vit_tiny", "wide_resnet"],
)
def test_train_other_architectures(tmp_path, args, expected):
    result = runner.invoke(app, ["train", "--epochs", "1", "--out", "m.safetensors", *args])
    assert result.exit_code == 0, result.output
    header = nets.load_metadata(tmp_path / "m.safetensors")
    assert header["arch"] == args[1]
    assert {k: header["kwargs"][k] for k in expected} == expected
