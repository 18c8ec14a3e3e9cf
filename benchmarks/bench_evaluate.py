"""Evaluation pipeline overhead: what the store, the resumption bookkeeping and the report cost on top of
the attacks and certificates themselves, measured in one run of a small digits evaluation.

Figures (ratios of times measured in the same run):
- run overhead: (wall time of ``evaluate.run`` - sum of the units' compute times) / sum of unit times
  (input loading and checks, SQLite transactions, logging, progress);
- resume: wall time of re-running the finished run (nothing to compute) / first run;
- report: wall time of ``report.render`` (aggregation of every (eps, p, loss) + results.json, report.md,
  plots) / first run.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchmarks.run import row
from wdrobust.pipeline import Store, build_config, run
from wdrobust.report import render


def main() -> list[dict]:
    """Rows {"benchmark", "figure", "value", "unit"} for benchmarks/run.py."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        cfg = build_config(
            n=150,
            batch_size=25,
            eps="0.01,0.03",
            p="1,2,inf",
            attacks="wda,wda++",
            certificates="local,radius",
            out=str(out),
            quiet=True,
        )
        first = run(cfg)
        with Store(out / "store.sqlite") as store:
            compute = sum(u.seconds for u in store.units())
        tic = time.perf_counter()
        run(cfg)
        resume = time.perf_counter() - tic
        tic = time.perf_counter()
        render(out)
        report = time.perf_counter() - tic
    name = "evaluate (digits, n=150, 6 batches, 2 attacks x 6 threats + 2 certificates)"
    figures = {
        "run overhead / unit compute": (first.seconds - compute) / compute,
        "resume of a finished run / first run": resume / first.seconds,
        "report render / first run": report / first.seconds,
    }
    rows = [row(name, k, v, "ratio") for k, v in figures.items()]
    return [*rows, row(name, "units", first.computed, "count")]
