"""The run folder: the names of what wdrobust writes there, its lock, and removing wdrobust's files.

A run folder holds ``store.sqlite`` (with SQLite's ``-wal``/``-shm`` files), ``run.log``, ``run.lock``,
``results.json``, ``report.md``, ``plots/*.png``, (``report --format robustbench``) ``model_info.json``
and (after a torchrun) ``shards/``, plus temporary files of the atomic writer while something is
written. Anything else in it is the user's and is never removed, not even by ``--force``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from wdrobust._atomic import is_temporary, remove_temporaries
from wdrobust.pipeline.store import STORE_NAME

LOG_NAME = "run.log"
LOCK_NAME = "run.lock"
RESULTS_NAME = "results.json"
REPORT_NAME = "report.md"
PLOTS_DIR = "plots"
#: Where the ranks of a torchrun evaluation keep their shard run folders (``shards/rank-I-of-K``).
SHARDS_DIR = "shards"
MODEL_INFO_NAME = "model_info.json"
STORE_FILES = (STORE_NAME, f"{STORE_NAME}-wal", f"{STORE_NAME}-shm", f"{STORE_NAME}-journal")
#: The files wdrobust writes at the top of a run folder.
OWN_FILES = (*STORE_FILES, LOG_NAME, LOCK_NAME, RESULTS_NAME, REPORT_NAME, MODEL_INFO_NAME)

#: How a refusal to reuse a run folder ends: choose another folder; --force only with what it costs.
CHOOSE_ANOTHER = "choose another --out (--force deletes the results of the run in that folder)"


class FolderInUse(ValueError):
    """Another process holds the run folder's lock."""


def foreign_entries(out: Path) -> list[Path]:
    """The entries of a run folder that wdrobust did not write (sorted)."""
    own = set(OWN_FILES) | {PLOTS_DIR, SHARDS_DIR}
    return sorted(p for p in out.iterdir() if p.name not in own and not is_temporary(p))


@contextlib.contextmanager
def locked(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``out/run.lock`` (fcntl.flock) for the block.

    Raises FolderInUse naming the folder (and the holder's pid) if another process holds it. The kernel
    drops the lock when its holder exits in any way, SIGKILL included, so a lock file left behind never
    blocks a later run; it is therefore never removed while in use.
    """
    path = out / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip()
            raise FolderInUse(
                f"run folder {out} is in use by another wdrobust evaluate"
                f"{f' (pid {holder})' if holder else ''}; wait for it to finish or choose another --out"
            ) from None
        with contextlib.suppress(OSError):  # the pid is only for the message above (a full disk)
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)


def clear(out: Path) -> None:
    """Remove what wdrobust wrote in ``out`` (store, log, results, report, plots, temporary files) except
    the lock file; everything else stays. An emptied ``plots/`` folder is removed."""
    for name in (*STORE_FILES, LOG_NAME, RESULTS_NAME, REPORT_NAME, MODEL_INFO_NAME):
        _remove_file(out / name)
    remove_stale(out)
    plots = out / PLOTS_DIR
    if plots.is_dir():
        for p in plots.glob("*.png"):
            _remove_file(p)
        with contextlib.suppress(OSError):
            plots.rmdir()  # only when empty


def remove_stale(out: Path) -> None:
    """Remove temporary files a killed writer left in ``out`` and ``out/plots`` (call it holding the lock)."""
    remove_temporaries(out)
    remove_temporaries(out / PLOTS_DIR)


def remove_created(out: Path) -> None:
    """Undo the creation of a run folder: remove wdrobust's files, the lock file, then the folder if it is
    empty."""
    clear(out)
    _remove_file(out / LOCK_NAME)
    with contextlib.suppress(OSError):
        out.rmdir()


def _remove_file(path: Path) -> None:
    if path.is_file() or path.is_symlink():
        path.unlink(missing_ok=True)
