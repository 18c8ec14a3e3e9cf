"""Atomic file writes shared by every layer that saves something (checkpoints, distributions, reports).

Every file gets the usual permissions, 0666 minus the umask (checkpoints and their sidecars alike).
A temporary file is named ``.<name>.wdrobust-tmp-<random><suffix>`` beside its target, so that one left
behind by a killed process can be recognised (``is_temporary``) and removed (``remove_temporaries``).
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

#: Marks the temporary files of ``atomic_write`` (and nothing else a user is likely to name a file).
TEMP_TAG = ".wdrobust-tmp-"


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call write(tmp) on a temporary path beside ``path``, then rename it onto ``path``; returns path.

    Readers never see a partial file; on any error (KeyboardInterrupt included) the temporary file is
    removed and nothing is left. Missing parent folders are created. An OSError (full disk, read-only
    folder, ...) is raised again naming ``path``.
    """
    return atomic_write_all({path: write})[0]


def atomic_write_all(writes: Mapping[str | Path, Callable[[Path], None]]) -> list[Path]:
    """Write several files all or none (a checkpoint and its sidecar); returns their paths.

    Every write(tmp) goes to a temporary path beside its target; only when all of them succeeded are the
    temporary files renamed onto their targets, in the given order. On any error (KeyboardInterrupt
    included) the temporary files are removed; the targets stay as they were (a previous version
    included), unless a rename fails after another one succeeded: then they are all removed, so that old
    and new files are never mixed. An OSError is raised again naming the path it concerns.
    """
    jobs = [(Path(path), write) for path, write in writes.items()]
    temps: list[Path] = []
    renamed = 0
    current = jobs[0][0]
    try:
        for current, write in jobs:
            temps.append(_temporary(current))
            write(temps[-1])
            os.chmod(temps[-1], 0o666 & ~_umask())  # after writing: mkstemp makes 0600, some writers too
        for (current, _), tmp in zip(jobs, temps, strict=True):
            os.replace(tmp, current)
            renamed += 1
    except BaseException as exc:
        for leftover in (*temps, *(path for path, _ in jobs if 0 < renamed < len(jobs))):
            leftover.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _naming(exc, current) from None
        raise
    return [path for path, _ in jobs]


def check_writable(path: str | Path) -> Path:
    """Raise OSError naming ``path`` unless ``atomic_write(path)`` can create it; returns path.

    Checked before expensive work, so that it does not fail at the end: ``path`` must not be a folder,
    and the nearest existing folder above it must accept a new file (see ``_check_accepts_files``).
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a folder, expected a file path", str(path))
    _check_accepts_files(_nearest_existing(path.parent), path)
    return path


def check_folder_writable(path: str | Path) -> Path:
    """Raise OSError naming ``path`` unless files can be written in folder ``path``; returns path.

    ``path`` is an existing folder that accepts new files, or does not exist and its nearest existing
    folder above accepts new entries (``path`` and its missing parents can then be created).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "exists and is not a folder", str(path))
    _check_accepts_files(_nearest_existing(path), path)
    return path


def _nearest_existing(path: Path) -> Path:
    """``path`` if it exists, else its nearest existing ancestor."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_accepts_files(folder: Path, path: Path) -> None:
    """Raise OSError naming ``path`` unless ``folder`` is a folder in which a file can be created.

    Tried with an anonymous temporary file, removed again: this also catches read-only file systems
    (where root's permission bits do not help) and file systems that take no new entries at all (/proc
    says "No such file or directory" there, which would be wrong about an existing folder).
    """
    if not folder.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, f"cannot create it: {folder} is not a folder", str(path))
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        reason = _REFUSALS.get(exc.errno, exc.strerror)
        raise OSError(exc.errno, f"cannot create files in {folder}: {reason}", str(path)) from None


#: What an error of creating a file in an existing folder means (the OS's own words are misleading there).
_REFUSALS = {
    errno.ENOENT: "the folder is not writable (its file system takes no new files)",
    errno.EACCES: "the folder is not writable (permission denied)",
    errno.EPERM: "the folder is not writable (operation not permitted)",
    errno.EROFS: "the folder is not writable (read-only file system)",
}


def is_temporary(path: str | Path) -> bool:
    """True for the name of a temporary file of ``atomic_write``."""
    name = Path(path).name
    return name.startswith(".") and TEMP_TAG in name


def remove_temporaries(folder: str | Path) -> list[Path]:
    """Remove the temporary files ``atomic_write`` left directly in ``folder`` (a killed writer's);
    returns them. Only call it while no other process writes there."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = [p for p in folder.iterdir() if is_temporary(p) and p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def _temporary(path: Path) -> Path:
    """A new empty temporary file beside ``path`` (missing parent folders created); OSError names path."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}{TEMP_TAG}", suffix=path.suffix, dir=path.parent)
    except OSError as exc:
        raise _naming(exc, path) from None
    os.close(fd)
    return Path(tmp)


def _naming(exc: OSError, path: Path) -> OSError:
    """The same error, reported for ``path`` (the temporary file's name means nothing to a user)."""
    return OSError(exc.errno, exc.strerror or str(exc), str(path))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
