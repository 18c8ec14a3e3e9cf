"""Speed-up of 2 torchrun ranks (gloo, CPU) over 1 process for one CPU-bound evaluation, in one run.

The same `wdrobust evaluate` command (digits default model, all 450 test samples in 30 batches; wda,
apgd and pgd at eps in {0.01, 0.02, 0.03} and p in {1, 2, inf}; the crown certificate; one torch thread
per process) runs as one process and as `torchrun --standalone --nproc-per-node 2 --no-python wdrobust
evaluate ...`, each into a fresh run folder; the figures are the wall times (start-up, merge and report
included) and their ratio. On 2 cores the ideal is 2; the start-up of torchrun and the merge are the
difference. Their results.json are checked to be equal (timing aside) before the ratio is reported.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.run import row

BIN = Path(sys.executable).parent
FLAGS = ["-n", "450", "--batch-size", "15", "--eps", "0.01,0.02,0.03", "--p", "1,2,inf",
         "--attacks", "wda,apgd,pgd", "--certificates", "crown", "--threads", "1", "--quiet"]  # fmt: skip


def _timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:6])} ... failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in ("seconds", "run")}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def main() -> list[dict]:
    wdrobust = shutil.which("wdrobust", path=str(BIN))
    torchrun = shutil.which("torchrun", path=str(BIN))
    if wdrobust is None or torchrun is None:
        print("skipped: the wdrobust and torchrun scripts must be installed next to this python")
        return []
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, OMP_NUM_THREADS="1")
        one, two = Path(tmp) / "one", Path(tmp) / "two"
        single = _timed([wdrobust, "evaluate", *FLAGS, "--out", str(one)], env)
        ranks = _timed(
            [torchrun, "--standalone", "--nproc-per-node", "2", "--no-python", wdrobust, "evaluate", *FLAGS,
             "--out", str(two)],
            env,
        )  # fmt: skip
        same = _strip(json.loads((one / "results.json").read_text())) == _strip(
            json.loads((two / "results.json").read_text())
        )
    if not same:
        raise RuntimeError("the 2-rank results.json differs from the single-process one")
    return [
        row("evaluate 450 samples, 1 process", "seconds", single, "s"),
        row("evaluate 450 samples, torchrun 2 ranks", "seconds", ranks, "s"),
        row("evaluate 450 samples", "speed-up of 2 ranks over 1", single / ranks, "x"),
    ]


if __name__ == "__main__":
    for r in main():
        print(r)
