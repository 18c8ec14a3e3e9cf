"""The run folder of `wdrobust evaluate`: a refused folder is left byte for byte as it was, a folder that
cannot be written is reported with the real reason, and the default --out is the model's and data's own
(the demo's folder only for the default model on its default data)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from _cli import TINY, invoke, one_line_error, runner
from _paths import ROOT

from wdrobust import nets
from wdrobust.cli import app
from wdrobust.pipeline.config import DEFAULT_OUT, build_config, default_out

CONFIGS = ROOT / "configs"


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    """A fresh working folder."""
    monkeypatch.chdir(tmp_path)


def snapshot(folder):
    """Every path below folder with its bytes (None for folders)."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in folder.rglob("*")}


def _refuses_with_another_out(result, out):
    one_line_error(result, f"run folder {out}", "choose another --out")
    message = result.output.strip()
    assert "--force deletes the results of the run in that folder" in message
    assert "use --force" not in message


# --- a refusal leaves the folder as it was -----------------------------------------------------------
def test_refusing_another_configuration_leaves_the_folder_byte_for_byte(tmp_path):
    assert invoke("evaluate", *TINY, "--out", "run").exit_code == 0
    before = snapshot(tmp_path / "run")
    assert "store.sqlite" in before and "store.sqlite-wal" not in before
    result = invoke("evaluate", *TINY, "--seed", "1", "--out", "run")
    _refuses_with_another_out(result, "run")
    assert "different configuration" in result.output
    assert snapshot(tmp_path / "run") == before


def test_refusing_a_changed_checkpoint_never_suggests_force_alone(tmp_path):
    model = nets.save(nets.build("mlp", seed=0, widths=[8]), tmp_path / "m.safetensors")
    assert invoke("evaluate", *TINY, "--model", model, "--out", "run").exit_code == 0
    nets.save(nets.build("mlp", seed=1, widths=[8]), model)  # other weights, same configuration
    before = snapshot(tmp_path / "run")
    result = invoke("evaluate", *TINY, "--model", model, "--out", "run")
    _refuses_with_another_out(result, "run")
    assert "model checkpoint changed" in result.output
    assert snapshot(tmp_path / "run") == before


# --- a folder that cannot be written: the real reason ------------------------------------------------
@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_out_in_proc_says_not_writable():
    """Creating anything in /proc fails with ENOENT although /proc exists: the message says so."""
    result = invoke("evaluate", *TINY, "--out", "/proc/wdrobust-run")
    one_line_error(result, "/proc/wdrobust-run", "cannot create files in /proc", "not writable")
    assert "No such file" not in result.output
    result = invoke("train", "--out", "/proc/m.safetensors")
    one_line_error(result, "/proc/m.safetensors", "cannot create files in /proc", "not writable")
    result = invoke("attack", "--model", "x", "--save", "/proc/d.safetensors")
    one_line_error(result, "/proc/d.safetensors", "not writable")


@pytest.fixture
def permission_denied(tmp_path, monkeypatch):
    """A folder without write permission: chmod 0o555, which binds only non-root users; as root (the
    test machines) the refusal the kernel would give a user is simulated where the folder is tried."""
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    if os.geteuid() == 0:
        import tempfile

        real = tempfile.TemporaryFile

        def refuse(*args, dir=None, **kwargs):
            if dir is not None and Path(dir).resolve() == folder:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(folder))
            return real(*args, dir=dir, **kwargs)

        monkeypatch.setattr("wdrobust._atomic.tempfile.TemporaryFile", refuse)
    yield folder
    folder.chmod(0o755)


@pytest.mark.parametrize("out", ["ro/run", "ro/deeper/run", "ro"])
def test_read_only_folder_is_named_before_the_work(tmp_path, permission_denied, monkeypatch, out):
    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the run folder was checked")

    monkeypatch.setattr("wdrobust.pipeline.runner.evaluation_inputs", refuse)
    result = invoke("evaluate", *TINY, "--out", out)
    one_line_error(result, out, "cannot create files in ro:", "not writable (permission denied)")
    assert not os.listdir(permission_denied)


def test_out_that_is_a_file_or_below_one(tmp_path):
    (tmp_path / "file.txt").write_text("mine")
    one_line_error(invoke("evaluate", *TINY, "--out", "file.txt"), "file.txt", "not a folder")
    result = invoke("evaluate", *TINY, "--out", "file.txt/run")
    one_line_error(result, "file.txt/run", "file.txt is not a folder")
    assert (tmp_path / "file.txt").read_text() == "mine"


# --- the default --out ---------------------------------------------------------------------------------
def test_default_out_is_the_models_and_datas_own():
    assert default_out("digits-default", "digits") == DEFAULT_OUT == "runs/digits-default"
    assert default_out("runs/models/digits-mlp.safetensors", "digits") == "runs/digits-mlp-digits"
    assert default_out("digits-default", "data/other.npz") == "runs/digits-default-other"
    assert default_out("elsewhere/digits-default.safetensors", "digits") != DEFAULT_OUT
    assert build_config().out == DEFAULT_OUT
    assert build_config(CONFIGS / "digits-default.toml").out == DEFAULT_OUT
    # a copy of the demo's configuration for another model does not write into the demo's folder
    assert build_config(CONFIGS / "digits-default.toml", model="m.safetensors").out == "runs/m-digits"
    assert build_config(out="runs/mine", model="m.safetensors").out == "runs/mine"


def test_evaluate_without_out_never_uses_the_demos_folder_for_another_model(tmp_path):
    model = nets.save(nets.build("mlp", seed=0, widths=[8]), tmp_path / "m.safetensors")
    result = invoke("evaluate", *TINY, "--model", model)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "runs" / "m-digits" / "results.json").is_file()
    assert not (tmp_path / DEFAULT_OUT).exists()
    result = invoke("evaluate", *TINY)  # the default model: the demo's folder
    assert result.exit_code == 0, result.output
    assert (tmp_path / DEFAULT_OUT / "results.json").is_file()


def test_help_documents_the_default_out():
    result = runner.invoke(app, ["evaluate", "--help"], env={"COLUMNS": "400"})  # one line per option
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "runs/<model stem>-<data stem>" in text and DEFAULT_OUT in text
    assert "delete the results of the run in --out" in text
