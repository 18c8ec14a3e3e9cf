"""The run store: per-sample records of an evaluation in one SQLite file (stdlib sqlite3, WAL mode).

Tables
    meta(key, value)            config (user spelling), canonical config, its SHA-256, data facts
    sessions(id, started, pid)  one row per process that worked on the run
    jobs(job, spec)             what each job computes (JSON: kind, method, norm, eps, p)
    units(job, batch, ...)      one row per finished (job, batch) unit: session, start/finish times,
                                seconds, pass counts, JSON info; primary key (job, batch), so a finished unit
                                can never be stored twice
    arrays(job, batch, name, dtype, shape, data)
                                the unit's per-sample arrays (row i = sample i of the batch), raw bytes

A unit's arrays and its ``units`` row are written in one transaction, so after a crash (even SIGKILL) or
a failed write (a full disk: the transaction is rolled back) a unit is either fully stored or absent.
``read_meta`` and ``stored_jobs`` read an existing store without writing to it (nor creating tables
in a foreign SQLite file, nor leaving ``-wal``/``-shm`` files beside it); ``store_errors`` reports
sqlite3 failures as ``StoreError`` naming the file.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

STORE_NAME = "store.sqlite"
#: The tables that make a SQLite file a wdrobust store.
TABLES = ("meta", "sessions", "jobs", "units", "arrays")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions(id INTEGER PRIMARY KEY AUTOINCREMENT, started REAL NOT NULL,
    pid INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS jobs(job TEXT PRIMARY KEY, spec TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS units(job TEXT NOT NULL, batch INTEGER NOT NULL, session INTEGER NOT NULL,
    started REAL NOT NULL, finished REAL NOT NULL, seconds REAL NOT NULL,
    forward_passes INTEGER NOT NULL, backward_passes INTEGER NOT NULL, info TEXT NOT NULL,
    PRIMARY KEY(job, batch));
CREATE TABLE IF NOT EXISTS arrays(job TEXT NOT NULL, batch INTEGER NOT NULL, name TEXT NOT NULL,
    dtype TEXT NOT NULL, shape TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY(job, batch, name));
"""


@dataclass(frozen=True)
class Unit:
    """A finished (job, batch) unit as stored."""

    job: str
    batch: int
    session: int
    started: float
    finished: float
    seconds: float
    forward_passes: int
    backward_passes: int
    info: dict[str, Any]


def encode(a: np.ndarray) -> tuple[str, str, bytes]:
    """(dtype, shape JSON, bytes) of an array; floats are stored as float64, bools as uint8."""
    a = np.asarray(a)
    if a.dtype.kind == "f":
        a = a.astype(np.float64)
    elif a.dtype.kind == "b":
        a = a.astype(np.uint8)
    elif a.dtype.kind in "iu":
        a = a.astype(np.int64)
    else:
        raise ValueError(f"cannot store arrays of dtype {a.dtype}")
    return a.dtype.str, json.dumps(list(a.shape)), np.ascontiguousarray(a).tobytes()


def decode(dtype: str, shape: str, data: bytes) -> np.ndarray:
    """Inverse of ``encode``."""
    return np.frombuffer(data, dtype=np.dtype(dtype)).reshape(json.loads(shape)).copy()


class StoreError(OSError):
    """A failure of the SQLite store (full disk, read-only folder, not a store, ...); names the file."""


@contextlib.contextmanager
def store_errors(path: str | Path) -> Iterator[None]:
    """Turn sqlite3 errors raised in the block into a StoreError naming ``path``."""
    try:
        yield
    except sqlite3.Error as exc:
        raise _failure(path, exc) from None


def _failure(path: str | Path, exc: sqlite3.Error) -> StoreError:
    return StoreError(f"run store {path}: {exc}")


@contextlib.contextmanager
def _read_only(path: str | Path) -> Iterator[sqlite3.Connection | None]:
    """A read-only connection to an existing store; None for a missing or empty SQLite file (a run killed
    before it created its tables); ValueError for a file that is not a wdrobust store."""
    path = Path(path)
    if not path.exists():
        yield None
        return
    with store_errors(path):
        conn = sqlite3.connect(_read_only_uri(path), uri=True, timeout=30.0)
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables and not set(TABLES) <= tables:
            raise ValueError(f"{path} is not a wdrobust store; choose another --out")
        yield conn if tables else None
    except sqlite3.OperationalError as exc:  # locked, unreadable, ...
        raise _failure(path, exc) from None
    except sqlite3.DatabaseError:  # not a SQLite file at all
        raise ValueError(f"{path} is not a wdrobust store; choose another --out") from None
    finally:
        conn.close()


def _read_only_uri(path: Path) -> str:
    """The URI that opens ``path`` for reading without creating anything beside it.

    SQLite opens a WAL database read-only by creating its ``-wal`` and ``-shm`` files, and a read-only
    connection cannot remove them again. Without a ``-wal`` file the database file holds every committed
    transaction (the last connection to close checkpoints the WAL and removes it), so it is read as an
    immutable file: no lock, no file created. With a ``-wal`` file (a live run, or one killed before it
    closed) the committed transactions may be there, so it is opened as usual; its files exist already.
    A writer that starts while an immutable read is under way appends to its new WAL, which the read
    does not see: the read answers as of just before that writer started.
    """
    uri = f"{path.resolve().as_uri()}?mode=ro"
    wal = path.with_name(f"{path.name}-wal")
    return uri if wal.exists() else f"{uri}&immutable=1"


def read_meta(path: str | Path, key: str) -> Any:
    """A meta value of a store (None if absent or no store), read without writing."""
    with _read_only(path) as conn:
        row = (
            None if conn is None else conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        )
    return None if row is None else json.loads(row[0])


def stored_jobs(path: str | Path) -> set[str]:
    """The jobs with at least one finished unit in a store (none if no store), read without writing."""
    with _read_only(path) as conn:
        return set() if conn is None else {row[0] for row in conn.execute("SELECT DISTINCT job FROM units")}


class Store:
    """A run's SQLite store. ``Store(path)`` opens (creating if needed) the file in WAL mode."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(f"BEGIN IMMEDIATE;{_SCHEMA}COMMIT;")  # all tables or none (a full disk)
        self.session: int | None = None

    def close(self) -> None:
        """Close the connection (checkpointing the WAL)."""
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- meta, sessions, jobs -------------------------------------------------------------------------
    def get_meta(self, key: str) -> Any:
        """The JSON value stored under key, or None."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def set_meta(self, values: dict[str, Any]) -> None:
        """Store JSON values under their keys, in one transaction."""
        with self._transaction():
            self.conn.executemany(
                "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                [(k, json.dumps(v, sort_keys=True)) for k, v in values.items()],
            )

    def begin_session(self) -> int:
        """Record that this process works on the run; returns its session id."""
        with self._transaction():
            cur = self.conn.execute(
                "INSERT INTO sessions(started, pid) VALUES (?, ?)", (time.time(), os.getpid())
            )
        self.session = int(cur.lastrowid)
        return self.session

    def add_jobs(self, specs: dict[str, dict[str, Any]]) -> None:
        """Record the jobs' specs (idempotent)."""
        with self._transaction():
            self.conn.executemany(
                "INSERT OR REPLACE INTO jobs(job, spec) VALUES (?, ?)",
                [(k, json.dumps(v, sort_keys=True)) for k, v in specs.items()],
            )

    def jobs(self) -> dict[str, dict[str, Any]]:
        """{job: spec} of every recorded job."""
        return {j: json.loads(s) for j, s in self.conn.execute("SELECT job, spec FROM jobs ORDER BY job")}

    # -- units ----------------------------------------------------------------------------------------
    def finished(self) -> set[tuple[str, int]]:
        """The (job, batch) pairs already stored."""
        return {(j, int(b)) for j, b in self.conn.execute("SELECT job, batch FROM units")}

    def put_unit(
        self,
        job: str,
        batch: int,
        arrays: dict[str, np.ndarray],
        *,
        started: float,
        seconds: float,
        forward_passes: int = 0,
        backward_passes: int = 0,
        info: dict[str, Any] | None = None,
    ) -> None:
        """Store a finished unit: its arrays and its ``units`` row in one transaction.

        A unit already stored raises sqlite3.IntegrityError (finished units are never recomputed).
        """
        if self.session is None:
            raise RuntimeError("begin_session() before storing units")
        rows = [(job, batch, name, *encode(a)) for name, a in arrays.items()]
        with self._transaction():
            self.conn.execute(
                "INSERT INTO units VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job,
                    batch,
                    self.session,
                    started,
                    time.time(),
                    seconds,
                    int(forward_passes),
                    int(backward_passes),
                    json.dumps(info or {}, sort_keys=True),
                ),
            )
            self.conn.executemany("INSERT INTO arrays VALUES (?, ?, ?, ?, ?, ?)", rows)

    def units(self, job: str | None = None) -> list[Unit]:
        """Finished units (of one job, or all), ordered by job then batch."""
        sql = "SELECT * FROM units" + (" WHERE job = ?" if job else "") + " ORDER BY job, batch"
        rows = self.conn.execute(sql, (job,) if job else ())
        return [Unit(r[0], int(r[1]), *r[2:8], json.loads(r[8])) for r in rows]

    def arrays(self, job: str, batch: int) -> dict[str, np.ndarray]:
        """{name: array} of one stored unit."""
        rows = self.conn.execute(
            "SELECT name, dtype, shape, data FROM arrays WHERE job = ? AND batch = ?", (job, batch)
        )
        return {name: decode(dt, sh, data) for name, dt, sh, data in rows}

    def job_arrays(self, job: str, batches: Iterable[int]) -> list[dict[str, np.ndarray]]:
        """The arrays of the given batches of a job, in that order."""
        return [self.arrays(job, b) for b in batches]

    def import_units(self, source: str | Path) -> int:
        """Copy the jobs and the finished units of another store that this one lacks (rows and arrays as
        stored, raw bytes), one transaction per unit; returns how many units were copied. The caller
        checks that both stores hold the same configuration. Each source session becomes a session here,
        found again by its start time and pid, so importing the same store twice adds nothing."""
        with _read_only(source) as src:
            if src is None:
                return 0
            self.add_jobs({job: json.loads(spec) for job, spec in src.execute("SELECT job, spec FROM jobs")})
            have = self.finished()
            new = [row for row in src.execute("SELECT * FROM units") if (row[0], int(row[1])) not in have]
            starts = {sid: (t, pid) for sid, t, pid in src.execute("SELECT id, started, pid FROM sessions")}
            sessions: dict[int, int] = {}
            with self._transaction():
                for sid in sorted({row[2] for row in new}):
                    started, pid = starts[sid]
                    found = self.conn.execute(
                        "SELECT id FROM sessions WHERE started = ? AND pid = ?", (started, pid)
                    ).fetchone()
                    if found is None:
                        cur = self.conn.execute(
                            "INSERT INTO sessions(started, pid) VALUES (?, ?)", (started, pid)
                        )
                        found = (cur.lastrowid,)
                    sessions[sid] = int(found[0])
            for job, batch, sid, *rest in new:
                arrays = src.execute("SELECT * FROM arrays WHERE job = ? AND batch = ?", (job, batch))
                with self._transaction():
                    self.conn.execute(
                        "INSERT INTO units VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (job, batch, sessions[sid], *rest),
                    )
                    self.conn.executemany("INSERT INTO arrays VALUES (?, ?, ?, ?, ?, ?)", arrays)
        return len(new)

    def _transaction(self) -> _Transaction:
        return _Transaction(self.conn)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, ROLLBACK on error or a failed COMMIT (the connection is in autocommit
    mode)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: type | None, *exc: object) -> None:
        if exc_type is None:
            try:
                self.conn.execute("COMMIT")
                return
            except sqlite3.Error:  # e.g. a full disk: nothing of the transaction may stay
                self._rollback()
                raise
        self._rollback()

    def _rollback(self) -> None:
        if self.conn.in_transaction:  # SQLite may have rolled back already
            self.conn.execute("ROLLBACK")
