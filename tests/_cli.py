"""Shared helpers of the CLI tests: invoking the app and the one-line error contract, small run flags."""

from __future__ import annotations

import contextlib
import sqlite3

from typer.testing import CliRunner

from wdrobust.cli import app

runner = CliRunner()

#: Evaluation flags: well under a second (TINY), about a second (MEDIUM, 48 units: about 1 MB of store),
#: a few seconds (SLOW, 240 units).
TINY = ["--n", "4", "--batch-size", "4", "--eps", "0.1", "--p", "inf", "--attacks", "wda++",
        "--certificates", "global", "--quiet"]  # fmt: skip
MEDIUM = ["--n", "16", "--batch-size", "2", "--eps", "0.1", "--p", "2,inf", "--attacks", "pgd,wda++",
          "--certificates", "global", "--quiet"]  # fmt: skip
SLOW = ["--n", "60", "--batch-size", "2", "--eps", "0.1", "--p", "1,2,inf", "--attacks", "pgd,apgd",
        "--certificates", "global", "--quiet"]  # fmt: skip


def invoke(*args):
    """Run the CLI in-process with the arguments (converted to strings)."""
    return runner.invoke(app, [str(a) for a in args])


def one_line_error(result, *parts):
    """The command failed with exit code 2 and a single `error: ...` line holding every part."""
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for part in parts:
        assert part in lines[0], lines[0]


#: results.json keys that hold timings (and session counts): left out when two runs are compared.
TIMING_KEYS = {"seconds", "run"}


def strip_timing(value):
    """A results.json document without its timing fields, for comparing two runs."""
    if isinstance(value, dict):
        return {k: strip_timing(v) for k, v in value.items() if k not in TIMING_KEYS}
    if isinstance(value, list):
        return [strip_timing(v) for v in value]
    return value


def finished_units(store):
    """{(job, batch): (session, finished)} of a store read without writing ({} while it has no tables)."""
    if not store.exists():
        return {}
    try:
        with contextlib.closing(sqlite3.connect(f"file:{store}?mode=ro", uri=True, timeout=5)) as conn:
            rows = conn.execute("SELECT job, batch, session, finished FROM units").fetchall()
    except sqlite3.DatabaseError:  # file or tables not created yet
        return {}
    return {(j, b): (s, f) for j, b, s, f in rows}
