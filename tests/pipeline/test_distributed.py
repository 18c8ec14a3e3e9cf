"""`torchrun --nproc-per-node 2 --no-python wdrobust evaluate ...` on the CPU (gloo): the ranks compute
their shards, rank 0 merges; the result equals the single-process run, and a killed rank resumes."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _cli import MEDIUM, SLOW, finished_units, invoke, strip_timing

BIN = Path(sys.executable).parent
TORCHRUN = shutil.which("torchrun", path=str(BIN)) or shutil.which("torchrun")
WDROBUST = shutil.which("wdrobust", path=str(BIN)) or shutil.which("wdrobust")
pytestmark = pytest.mark.skipif(
    TORCHRUN is None or WDROBUST is None, reason="torchrun and the wdrobust script must be installed"
)


def torchrun(flags, out):
    """The torchrun command line (-n: torchrun's own parser would take --n for --nnodes)."""
    flags = ["-n" if f == "--n" else f for f in flags]
    return [TORCHRUN, "--standalone", "--nproc-per-node", "2", "--no-python", WDROBUST, "evaluate", *flags,
            "--out", str(out)]  # fmt: skip


def pid_of(store):
    with contextlib.closing(sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5)) as conn:
        return conn.execute("SELECT pid FROM sessions ORDER BY id DESC LIMIT 1").fetchone()[0]


@pytest.fixture
def env():
    return dict(os.environ, OMP_NUM_THREADS="1")


def results(folder):
    return strip_timing(json.loads((folder / "results.json").read_text()))


@pytest.mark.slow
def test_two_ranks_equal_the_single_process_run(tmp_path, env):
    done = subprocess.run(torchrun(MEDIUM, tmp_path / "ranks"), env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "merged 2 run folders" in done.stdout
    shards = sorted(p.name for p in (tmp_path / "ranks" / "shards").iterdir())
    assert shards == ["rank-1-of-2", "rank-2-of-2"]
    assert invoke("evaluate", *MEDIUM, "--out", tmp_path / "single").exit_code == 0
    assert results(tmp_path / "ranks") == results(tmp_path / "single")


@pytest.mark.slow
def test_a_killed_rank_resumes_only_its_missing_units(tmp_path, env):
    out = tmp_path / "ranks"
    second = out / "shards" / "rank-2-of-2" / "store.sqlite"
    proc = subprocess.Popen(torchrun(SLOW, out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 180
    while len(finished_units(second)) < 3 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
    os.kill(pid_of(second), signal.SIGKILL)  # rank 1; torchrun then stops rank 0 and fails
    assert proc.wait(timeout=120) != 0
    stores = {r: out / "shards" / f"rank-{r}-of-2" / "store.sqlite" for r in (1, 2)}
    before = {r: finished_units(s) for r, s in stores.items()}
    assert not (out / "results.json").exists()

    again = subprocess.run(torchrun(SLOW, out), env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-3000:]
    after = {r: finished_units(s) for r, s in stores.items()}
    assert len(after[2]) > len(before[2])  # the kill came before rank 1 had finished
    for r in (1, 2):
        for unit, stamp in before[r].items():
            assert after[r][unit] == stamp  # stored once, never recomputed
    log = (out / "shards" / "rank-2-of-2" / "run.log").read_text()
    assert f"{len(before[2])} already finished (not recomputed)" in log
    assert invoke("evaluate", *SLOW, "--out", tmp_path / "single").exit_code == 0
    assert results(out) == results(tmp_path / "single")
