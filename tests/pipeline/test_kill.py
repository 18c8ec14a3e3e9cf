"""SIGKILL in the middle of an evaluation, then the same command again: the run resumes, no unit finished
before the kill is recomputed, and results.json equals that of an uninterrupted run (timings aside)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from _cli import finished_units, strip_timing
from typer.testing import CliRunner

from wdrobust.cli import app

runner = CliRunner()

ARGS = [
    "evaluate",
    "--n", "16",
    "--batch-size", "2",
    "--eps", "0.1",
    "--p", "2,inf",
    "--attacks", "pgd,wda++",
    "--certificates", "global,radius",
    "--quiet",
]  # fmt: skip


def command(out):
    return [sys.executable, "-c", "from wdrobust.cli import main; main()", *ARGS, "--out", str(out)]


@pytest.fixture
def env():
    """Environment of the subprocesses: one torch thread each."""
    return dict(os.environ, OMP_NUM_THREADS="1")


@pytest.mark.slow
def test_sigkill_then_resume_recomputes_nothing_and_matches_uninterrupted(tmp_path, env):
    killed_dir, clean_dir = tmp_path / "killed", tmp_path / "uninterrupted"
    store = killed_dir / "store.sqlite"
    proc = subprocess.Popen(command(killed_dir), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while len(finished_units(store)) < 2 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
    before = finished_units(store)
    assert len(before) >= 2

    resumed = subprocess.run(command(killed_dir), env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    after = finished_units(store)
    assert len(after) > len(before)  # the kill happened in the middle of the run
    for unit, (session, finished) in before.items():
        assert after[unit] == (session, finished)  # stored once, never recomputed
    assert {after[u][0] for u in set(after) - set(before)} == {max(s for s, _ in after.values())}
    log = (killed_dir / "run.log").read_text()
    assert f"{len(before)} already finished (not recomputed)" in log

    # the uninterrupted run of the same command, in-process (saves an interpreter start)
    assert runner.invoke(app, [*ARGS, "--out", str(clean_dir)]).exit_code == 0
    killed = json.loads((killed_dir / "results.json").read_text())
    uninterrupted = json.loads((clean_dir / "results.json").read_text())
    assert killed["run"]["sessions"] == 2 and uninterrupted["run"]["sessions"] == 1
    assert strip_timing(killed) == strip_timing(uninterrupted)
