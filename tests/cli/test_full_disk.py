"""A full disk while the CLI writes its outputs (`train`'s checkpoint, `attack --save`, `report`): one line
`error: ...` naming the file, exit code 2, and nothing partial left (no checkpoint without its sidecar, no
temporary file). The full disk is simulated portably (a write raising OSError(ENOSPC) for the temporary
file of one target), for real on a full tmpfs (where this machine allows mounting one), and with a file
size limit (RLIMIT_FSIZE, no root needed), which makes the kernel refuse the write itself."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _cli import TINY, invoke, one_line_error
from _fs import tmpfs
from _paths import TESTS

from wdrobust import nets
from wdrobust._atomic import TEMP_TAG, is_temporary
from wdrobust.cli import app
from wdrobust.cli.errors import USER_ERRORS, user_errors

#: Widths of the checkpoint `train` saves here: 64 x 512 float32 weights, about 130 kB.
WIDTHS = [512]


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    """A fresh working folder."""
    monkeypatch.chdir(tmp_path)


class _Fitted:
    """What `train.fit` returns, for a small untrained MLP (the tests are about saving it)."""

    def __init__(self, *args, **kwargs):
        self.model = nets.build("mlp", seed=0, widths=WIDTHS)
        self.metadata = {"epochs": 0}
        self.input_scaling = None
        self.test_accuracy = 0.1
        self.seconds = 0.0


@pytest.fixture
def no_training(monkeypatch):
    monkeypatch.setattr("wdrobust.cli.train.fit", _Fitted)


def _full_disk_for(monkeypatch, suffix):
    """Path.write_bytes / write_text raise ENOSPC on the temporary file of every target ending in suffix
    (as on a disk that fills up while that file is written)."""
    for name in ("write_bytes", "write_text"):
        original = getattr(Path, name)

        def refuse(self, data, *args, _original=original, **kwargs):
            if is_temporary(self) and self.suffix == suffix:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
            return _original(self, data, *args, **kwargs)

        monkeypatch.setattr(Path, name, refuse)


def _error_after_the_table(result, *parts):
    """`attack` printed its table on stdout, then failed saving: one `error: ...` line on stderr."""
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [result.stderr.strip()], result.stderr
    assert result.stderr.startswith("error: ") and all(part in result.stderr for part in parts), result.stderr


def _no_partial_checkpoint(folder):
    assert sorted(os.listdir(folder)) == [], "a partial checkpoint or a temporary file is left"


@pytest.mark.parametrize("suffix", [".safetensors", ".json"])
def test_train_on_a_full_disk_leaves_no_partial_checkpoint(tmp_path, no_training, monkeypatch, suffix):
    folder = tmp_path / "models"
    folder.mkdir()
    _full_disk_for(monkeypatch, suffix)
    result = invoke("train", "--out", folder / "m.safetensors", "--quiet")
    one_line_error(result, str(folder / f"m{suffix}"), "No space left on device")
    _no_partial_checkpoint(folder)


@pytest.mark.parametrize("suffix", [".safetensors", ".json"])
def test_a_failed_write_keeps_the_previous_checkpoint_pair(tmp_path, monkeypatch, suffix):
    path = nets.save(nets.build("mlp", seed=0, widths=[8]), tmp_path / "m.safetensors")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    _full_disk_for(monkeypatch, suffix)
    with pytest.raises(OSError, match="No space left") as caught:
        nets.save(nets.build("mlp", seed=1, widths=[8]), path)
    assert caught.value.filename == str(path.with_suffix(suffix))
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_a_refused_rename_never_mixes_old_and_new_files(tmp_path, monkeypatch):
    """The weights are renamed into place, then the sidecar's rename fails: both files are removed
    (new weights beside the old sidecar would load as a wrong model)."""
    path = nets.save(nets.build("mlp", seed=0, widths=[8]), tmp_path / "m.safetensors")
    replace = os.replace

    def refuse_json(src, dst):
        if str(dst).endswith(".json"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
        replace(src, dst)

    monkeypatch.setattr("wdrobust._atomic.os.replace", refuse_json)
    with pytest.raises(OSError, match="No space left") as caught:
        nets.save(nets.build("mlp", seed=1, widths=[8]), path)
    assert caught.value.filename == str(nets.sidecar_path(path))
    assert not os.listdir(tmp_path)


def test_train_on_a_real_full_disk(tmp_path, no_training):
    with tmpfs(tmp_path / "small", "size=64k") as small:
        result = invoke("train", "--out", small / "m.safetensors", "--quiet")
        one_line_error(result, str(small / "m.safetensors"), "No space left on device")
        _no_partial_checkpoint(small)


def test_train_past_the_file_size_limit(tmp_path):
    """RLIMIT_FSIZE makes the kernel refuse the write (EFBIG) below the checkpoint's size, as a full disk
    does, for any user; the child runs `wdrobust train` with fit replaced as above."""
    folder = tmp_path / "models"
    folder.mkdir()
    code = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (32_000, resource.RLIM_INFINITY))\n"
        "import test_full_disk, wdrobust.cli.train as train\n"
        "train.fit = test_full_disk._Fitted\n"
        "from wdrobust.cli import main\n"
        f"sys.argv = ['wdrobust', 'train', '--quiet', '--out', {str(folder / 'm.safetensors')!r}]\n"
        "main()\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), str(TESTS / "cli"), *sys.path]))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert str(folder / "m.safetensors") in lines[0] and "File too large" in lines[0], lines[0]
    _no_partial_checkpoint(folder)


@pytest.fixture
def attack_args(digits_mlp_path):
    return ("attack", "--model", digits_mlp_path, "--n", "60", "--attack", "wda++", "--quiet")


def test_attack_save_on_a_full_disk(tmp_path, attack_args, monkeypatch):
    _full_disk_for(monkeypatch, ".safetensors")
    result = invoke(*attack_args, "--save", tmp_path / "d.safetensors")
    _error_after_the_table(result, str(tmp_path / "d.safetensors"), "No space left on device")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("d.") or TEMP_TAG in p.name]


def test_attack_save_on_a_real_full_disk(tmp_path, attack_args):
    with tmpfs(tmp_path / "small", "size=4k") as small:
        result = invoke(*attack_args, "--save", small / "d.safetensors")
        _error_after_the_table(result, str(small / "d.safetensors"), "No space left on device")
        assert not os.listdir(small)


def test_report_on_a_full_disk_keeps_the_previous_outputs(tmp_path, monkeypatch):
    assert invoke("evaluate", *TINY, "--out", "run").exit_code == 0
    before = {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()}
    _full_disk_for(monkeypatch, ".md")
    result = invoke("report", "run")
    one_line_error(result, str(Path("run") / "report.md"), "No space left on device")
    after = {p: p.read_bytes() for p in (tmp_path / "run").rglob("*") if p.is_file()}
    assert not [p for p in after if TEMP_TAG in p.name]
    assert after[tmp_path / "run" / "report.md"] == before[tmp_path / "run" / "report.md"]


def test_every_command_turns_os_errors_into_one_line():
    """The contract is central: every subcommand is wrapped by cli.errors.user_errors (whose wrapper
    catches OSError, sqlite3.Error and ValueError), not guarded by a try/except of its own."""
    wrapper = user_errors(lambda: None).__code__
    commands = {info.name: info.callback for info in app.registered_commands}
    assert set(commands) == {"train", "attack", "certify", "evaluate", "merge", "report", "verify"}
    assert all(callback.__code__ is wrapper for callback in commands.values())
    assert OSError in USER_ERRORS
