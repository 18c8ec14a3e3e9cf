"""Operating-system faults and malformed files: read-only folders, a full disk, folders where a file is
expected, paths below a regular file (checked before the work, reported in one line naming the path, the
store never corrupted), broken sidecars and configuration files, and the permissions of checkpoints."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys

import pytest
from _cli import MEDIUM, TINY, invoke, one_line_error
from _fs import tmpfs

from wdrobust import nets
from wdrobust._atomic import atomic_write


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    """A fresh working folder."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if `wdrobust train` trains or `wdrobust attack` attacks: the checks come first."""

    def refuse(*args, **kwargs):
        raise AssertionError("the work started before the output path was checked")

    monkeypatch.setattr("wdrobust.cli.train.fit", refuse)
    monkeypatch.setattr("wdrobust.cli.common.model_and_samples", refuse)


@pytest.fixture
def read_only(tmp_path):
    """A folder in which no file can be created: a read-only tmpfs where mounting is allowed, else a
    folder without write permission (which binds only non-root users)."""
    folder = tmp_path / "ro"
    if os.geteuid() == 0:
        with tmpfs(folder, "ro,size=64k"):
            yield folder
        return
    folder.mkdir()
    folder.chmod(0o555)
    yield folder
    folder.chmod(0o755)


@pytest.fixture
def regular_file(tmp_path):
    """A regular file, below which nothing can be created (runs everywhere, root included)."""
    path = tmp_path / "file.txt"
    path.write_text("a file")
    return path


# --- item 5: output paths are checked before the work ------------------------------------------------
def test_read_only_output_folders(read_only, no_work):
    one_line_error(invoke("evaluate", *TINY, "--out", read_only / "run"), str(read_only / "run"))
    one_line_error(invoke("train", "--out", read_only / "m.safetensors"), str(read_only / "m.safetensors"))
    result = invoke("attack", "--model", "x.safetensors", "--save", read_only / "d.safetensors")
    one_line_error(result, str(read_only / "d.safetensors"))
    assert not os.listdir(read_only)


def test_paths_below_a_regular_file(regular_file, no_work):
    one_line_error(invoke("evaluate", *TINY, "--out", regular_file / "run"), str(regular_file / "run"))
    target = regular_file / "m.safetensors"
    one_line_error(invoke("train", "--out", target), str(target), f"{regular_file} is not a folder")
    one_line_error(invoke("attack", "--model", "x", "--save", target), str(target), "is not a folder")


def test_folders_where_a_file_is_expected(tmp_path, no_work):
    (tmp_path / "m.safetensors").mkdir()
    one_line_error(invoke("train", "--out", "m.safetensors"), "m.safetensors: is a folder")
    (tmp_path / "n.json").mkdir()  # the sidecar of n.safetensors
    one_line_error(invoke("train", "--out", "n.safetensors"), "n.json: is a folder")
    one_line_error(invoke("attack", "--model", "x", "--save", "m.safetensors"), "m.safetensors: is a folder")


def test_full_disk_stops_in_one_line_and_never_corrupts_the_store(tmp_path):
    with tmpfs(tmp_path / "small", "size=256k") as small:
        out = small / "run"
        one_line_error(invoke("evaluate", *MEDIUM, "--out", out), str(out))
        store = out / "store.sqlite"
        if store.exists():  # units stored before the disk filled up are intact and complete
            with contextlib.closing(sqlite3.connect(f"file:{store}?mode=ro", uri=True)) as conn:
                assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
                units = conn.execute("SELECT job, batch FROM units").fetchall()
                for job, batch in units:
                    names = conn.execute(
                        "SELECT COUNT(*) FROM arrays WHERE job = ? AND batch = ?", (job, batch)
                    )
                    assert names.fetchone()[0] > 0
        subprocess.run(["mount", "-o", "remount,size=16M", str(small)], check=True)
        result = invoke("evaluate", *MEDIUM, "--out", out)  # resumes once there is room
        assert result.exit_code == 0, result.output
        assert json.loads((out / "results.json").read_text())["run"]["units"] == 48


def test_atomic_write_on_a_full_disk_names_the_target_and_leaves_nothing(tmp_path):
    with tmpfs(tmp_path / "small", "size=64k") as small:
        with pytest.raises(OSError, match="No space left") as caught:
            atomic_write(small / "results.json", lambda tmp: tmp.write_bytes(b"x" * 200_000))
        assert caught.value.filename == str(small / "results.json")
        assert not os.listdir(small)


# --- item 7: messages about malformed files, and permissions -----------------------------------------
@pytest.fixture
def checkpoint(tmp_path):
    return nets.save(nets.build("mlp", seed=0, widths=[8]), tmp_path / "m.safetensors")


def _edit_sidecar(path, **kwargs):
    side = nets.sidecar_path(path)
    header = json.loads(side.read_text())
    header["kwargs"].update(kwargs)
    side.write_text(json.dumps(header))


def test_sidecar_field_of_the_wrong_type_is_named(checkpoint):
    _edit_sidecar(checkpoint, widths="abc")
    with pytest.raises(
        ValueError, match=r"m\.json: field kwargs\.widths must be a list of positive integers"
    ):
        nets.load(checkpoint)
    result = invoke("attack", "--model", checkpoint, "--n", "5")
    one_line_error(result, str(nets.sidecar_path(checkpoint)), "kwargs.widths", "'abc'")


def test_huge_sidecar_is_refused_before_allocating(checkpoint):
    _edit_sidecar(checkpoint, widths=[20000, 20000])  # 1.6 GB of weights if it were built
    # the peak resident memory of the child's own image (VmHWM; ru_maxrss would also count the forked
    # copy of the pytest worker, which is large late in a run)
    code = (
        "import re\n"
        "from wdrobust import nets\n"
        "try:\n"
        f"    nets.load({str(checkpoint)!r})\n"
        "except ValueError as exc:\n"
        "    print(exc)\n"
        "status = open('/proc/self/status').read()\n"
        "print(re.search(r'VmHWM:\\s*(\\d+) kB', status)[1])\n"  # kilobytes
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    message, peak_kb = done.stdout.strip().splitlines()
    assert "does not match architecture 'mlp' of sidecar" in message and "wrong shape" in message
    assert int(peak_kb) < 1_000_000, f"peak memory {int(peak_kb) // 1024} MB"


def test_non_utf8_config_file_is_named(tmp_path):
    path = tmp_path / "eval.toml"
    path.write_bytes(b'attacks = ["wda++"]\n# caf\xe9\n')
    one_line_error(invoke("evaluate", "--config", path, "--out", "runs/x"), str(path), "UTF-8")
    assert not (tmp_path / "runs").exists()


def test_checkpoint_and_sidecar_get_the_same_umask_permissions(tmp_path):
    previous = os.umask(0o027)
    try:
        path = nets.save(nets.build("mlp", widths=[4]), tmp_path / "p.safetensors")
    finally:
        os.umask(previous)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (path, nets.sidecar_path(path))}
    assert modes == {"p.safetensors": 0o640, "p.json": 0o640}
