"""The run folder of `wdrobust evaluate` under misuse: --force keeps the user's files and refuses folders
that are not runs, a second process on the same folder is refused (and a stale lock does not block), a
method the model does not support fails before anything is created, Ctrl-C says how to resume and a
resumed run removes the temporary files a killed writer left."""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from _cli import MEDIUM, SLOW, TINY, one_line_error, runner

from wdrobust import nets
from wdrobust._atomic import TEMP_TAG
from wdrobust.cli import app
from wdrobust.pipeline import Store


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    """A fresh working folder, one-thread children."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.chdir(tmp_path)


def evaluate(*args):
    return runner.invoke(app, ["evaluate", *args])


def tree(folder):
    """Every path below folder with its file content (None for folders)."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in folder.rglob("*")}


def start(args, out):
    """`wdrobust evaluate ARGS --out OUT` in a child process that handles SIGINT as Python does (a
    pytest-xdist worker may have SIGINT ignored, and children inherit that)."""
    code = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); " \
           "from wdrobust.cli import main; main()"  # fmt: skip
    cmd = [sys.executable, "-c", code, "evaluate", *args, "--out", str(out)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_units(proc, store, count=1, timeout=120.0):
    """Wait until the child has stored ``count`` units (it must still be running)."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        with (
            contextlib.suppress(sqlite3.Error),
            contextlib.closing(sqlite3.connect(f"file:{store}?mode=ro", uri=True)) as conn,
        ):
            if conn.execute("SELECT COUNT(*) FROM units").fetchone()[0] >= count:
                return
        time.sleep(0.01)
    raise AssertionError(f"no {count} units stored; child exited with {proc.poll()}: {proc.stderr.read()}")


# --- item 1: --force removes only what wdrobust wrote ------------------------------------------------
def test_force_keeps_user_files_in_the_run_folder(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    os.chdir(run_dir)  # --out . : the current folder is the run folder
    assert evaluate(*TINY, "--out", ".").exit_code == 0
    (run_dir / "notes.txt").write_text("my notes")
    (run_dir / "paper_figs").mkdir()
    (run_dir / "paper_figs" / "x.png").write_bytes(b"my figure")
    (run_dir / "plots" / "README").write_text("mine too")
    result = evaluate(*TINY, "--seed", "1", "--out", ".", "--force")
    assert result.exit_code == 0, result.output
    assert (run_dir / "notes.txt").read_text() == "my notes"
    assert (run_dir / "paper_figs" / "x.png").read_bytes() == b"my figure"
    assert (run_dir / "plots" / "README").read_text() == "mine too"
    with Store(run_dir / "store.sqlite") as store:
        assert store.get_meta("config")["seed"] == 1 and [s for s, in store.conn.execute(
            "SELECT id FROM sessions")] == [1]  # fmt: skip
    assert (run_dir / "results.json").is_file() and (run_dir / "plots" / "radii.png").is_file()


@pytest.mark.parametrize("store", [None, "foreign sqlite", "not sqlite"])
def test_force_refuses_a_folder_that_is_not_a_run(tmp_path, store):
    folder = tmp_path / "mine"
    (folder / "sub").mkdir(parents=True)
    (folder / "notes.txt").write_text("my notes")
    (folder / "sub" / "x.png").write_bytes(b"my figure")
    if store == "foreign sqlite":
        with contextlib.closing(sqlite3.connect(folder / "store.sqlite")) as conn:
            conn.execute("CREATE TABLE mine(x)")
            conn.commit()
    elif store == "not sqlite":
        (folder / "store.sqlite").write_text("some text")
    before = tree(folder)
    result = evaluate(*TINY, "--out", str(folder), "--force")
    one_line_error(result, str(folder))
    assert "not a wdrobust" in result.output
    assert tree(folder) == before  # nothing deleted, nothing added, the foreign database untouched


# --- item 3: one process per run folder --------------------------------------------------------------
def test_second_process_is_refused_and_a_stale_lock_does_not_block(tmp_path):
    out = tmp_path / "run"
    first = start(SLOW, out)
    try:
        wait_for_units(first, out / "store.sqlite")
        second = evaluate(*SLOW, "--out", str(out))
        one_line_error(second, f"run folder {out} is in use by another wdrobust evaluate", f"pid {first.pid}")
        assert first.poll() is None  # the first run was not disturbed
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert (out / "run.lock").is_file()  # left behind by the killed process, whose lock the kernel dropped
    third = evaluate(*TINY, "--out", str(out), "--force")
    assert third.exit_code == 0, third.output


# --- item 4: methods are checked against the model before anything is created ------------------------
def test_unsupported_certificate_creates_nothing(tmp_path):
    model = nets.save(nets.build("mlp", widths=[8], activation="gelu"), tmp_path / "gelu.safetensors")
    result = evaluate(*TINY, "--model", str(model), "--certificates", "global,cell", "--out", "runs/gelu")
    one_line_error(result, "certificate 'cell'", "GELU")
    assert not (tmp_path / "runs").exists()


# --- item 6: Ctrl-C ------------------------------------------------------------------------------------
def test_ctrl_c_says_how_to_resume_and_the_rerun_completes_without_temporaries(tmp_path):
    out = tmp_path / "run"
    proc = start(MEDIUM, out)
    wait_for_units(proc, out / "store.sqlite")
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert stdout == "" and stderr.strip().splitlines() == [
        f"interrupted: re-run the same command to resume the run in {out}"
    ]
    assert "interrupted (Ctrl-C)" in (out / "run.log").read_text()
    # what a writer killed in the middle of atomic_write leaves behind
    (out / "plots").mkdir(exist_ok=True)
    stale = [
        out / f".results.json{TEMP_TAG}k1ll3d00.json",
        out / "plots" / f".radii.png{TEMP_TAG}k1ll3d00.png",
    ]
    for path in stale:
        path.write_bytes(b"half written")
    resumed = evaluate(*MEDIUM, "--out", str(out))
    assert resumed.exit_code == 0, resumed.output
    assert not [p for p in out.rglob("*") if TEMP_TAG in p.name]
    assert (out / "results.json").is_file()
    with Store(out / "store.sqlite") as store:
        assert len({u.session for u in store.units()}) == 2
