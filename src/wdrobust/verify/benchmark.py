"""A benchmark run: every row of a competition instances.csv, results appended to a resumable CSV.

The results CSV has the columns RESULT_COLUMNS: the onnx and vnnlib paths as instances.csv writes them
(relative to its folder), the result and the seconds. Each finished instance is appended as one line
and flushed to disk (an interrupted run loses at most the instance in progress); a rerun with the same
output skips the (onnx, vnnlib) pairs it already holds. Networks are loaded once per file.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from pathlib import Path

from wdrobust import nets
from wdrobust.data.vnnlib import Instance, read_instances, read_vnnlib
from wdrobust.verify.instance import Verdict, verify_problem
from wdrobust.verify.problem import Network, Problem

RESULT_COLUMNS = ("onnx", "vnnlib", "result", "seconds")


def done_pairs(path: Path) -> set[tuple[str, str]]:
    """The (onnx, vnnlib) pairs already in a results CSV (none when it does not exist); ValueError when
    the file is not one."""
    if not path.exists():
        return set()
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return set()
    if tuple(rows[0]) != RESULT_COLUMNS:
        raise ValueError(f"{path} is not a results CSV (expected the header {','.join(RESULT_COLUMNS)})")
    return {(r[0], r[1]) for r in rows[1:] if len(r) == len(RESULT_COLUMNS)}


def append_row(path: Path, row: tuple[str, ...]) -> None:
    """Append one line (and the header to a new file), flushed and synced."""
    new = not path.exists() or path.stat().st_size == 0
    with path.open("a", newline="") as f:
        writer = csv.writer(f)
        if new:
            writer.writerow(RESULT_COLUMNS)
        writer.writerow(row)
        f.flush()
        os.fsync(f.fileno())


def run_benchmark(
    instances: Path,
    out: Path,
    timeout: float | None = None,
) -> Iterator[tuple[Instance, Verdict]]:
    """Verify every instance not yet in ``out`` (timeout: the instance's own unless given), appending its
    row; yields (instance, verdict) as each finishes."""
    rows = read_instances(instances)
    done = done_pairs(out)
    loaded: dict[Path, Network] = {}
    for inst in rows:
        key = inst.key
        if key in done:
            continue
        if inst.onnx not in loaded:
            loaded.clear()  # one network in memory at a time
            loaded[inst.onnx] = Network(nets.load(inst.onnx))
        problem = Problem(loaded[inst.onnx], read_vnnlib(inst.vnnlib))
        verdict = verify_problem(problem, inst.timeout if timeout is None else timeout)
        append_row(out, (*key, verdict.result, f"{verdict.seconds:.3f}"))
        done.add(key)
        yield inst, verdict
