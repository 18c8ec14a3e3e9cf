"""SIGKILL in the middle of an evaluation, then the same command again: the run resumes, no unit finished
before the kill is recomputed, and results.json equals that of an uninterrupted run (timings aside)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

ARGS = [
    "evaluate",
    "--n", "24",
    "--batch-size", "2",
    "--eps", "0.1",
    "--p", "2,inf",
    "--attacks", "pgd,wda++",
    "--certificates", "global,radius",
    "--quiet",
]  # fmt: skip
TIMING_KEYS = {"seconds", "run"}


def command(out):
    return [sys.executable, "-c", "from wdrobust.cli import main; main()", *ARGS, "--out", str(out)]


def strip_timing(value):
    if isinstance(value, dict):
        return {k: strip_timing(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [strip_timing(v) for v in value]
    return value


def finished_units(store):
    if not store.exists():
        return {}
    try:
        with sqlite3.connect(store, timeout=5) as conn:
            rows = conn.execute("SELECT job, batch, session, finished FROM units").fetchall()
    except sqlite3.OperationalError:  # tables not created yet
        return {}
    return {(j, b): (s, f) for j, b, s, f in rows}


@pytest.fixture
def env(tmp_path):
    cache = tmp_path / "cache"
    env = dict(os.environ, WDROBUST_CACHE=str(cache), OMP_NUM_THREADS="1")
    # train the default model once, outside the timed/killed runs
    subprocess.run(
        [sys.executable, "-c", "from wdrobust.train import ensure_default_model; ensure_default_model()"],
        env=env,
        check=True,
    )
    return env


def test_sigkill_then_resume_recomputes_nothing_and_matches_uninterrupted(tmp_path, env):
    killed_dir, clean_dir = tmp_path / "killed", tmp_path / "uninterrupted"
    store = killed_dir / "store.sqlite"
    proc = subprocess.Popen(command(killed_dir), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while len(finished_units(store)) < 3 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
    before = finished_units(store)
    assert len(before) >= 3

    resumed = subprocess.run(command(killed_dir), env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    after = finished_units(store)
    assert len(after) > len(before)  # the kill happened in the middle of the run
    for unit, (session, finished) in before.items():
        assert after[unit] == (session, finished)  # stored once, never recomputed
    assert {after[u][0] for u in set(after) - set(before)} == {max(s for s, _ in after.values())}
    log = (killed_dir / "run.log").read_text()
    assert f"{len(before)} already finished (not recomputed)" in log

    fresh = subprocess.run(command(clean_dir), env=env, capture_output=True, text=True)
    assert fresh.returncode == 0, fresh.stderr
    killed = json.loads((killed_dir / "results.json").read_text())
    uninterrupted = json.loads((clean_dir / "results.json").read_text())
    assert killed["run"]["sessions"] == 2 and uninterrupted["run"]["sessions"] == 1
    assert strip_timing(killed) == strip_timing(uninterrupted)
