"""Atomic file writes shared by every layer that saves something (checkpoints, distributions, reports).

Every file gets the usual permissions, 0666 minus the umask (checkpoints and their sidecars alike).
A temporary file is named ``.<name>.wdrobust-tmp-<random><suffix>`` beside its target, so that one left
behind by a killed process can be recognised (``is_temporary``) and removed (``remove_temporaries``).
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

#: Marks the temporary files of ``atomic_write`` (and nothing else a user is likely to name a file).
TEMP_TAG = ".wdrobust-tmp-"


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call write(tmp) on a temporary path beside ``path``, then rename it onto ``path``; returns path.

    Readers never see a partial file; on any error (KeyboardInterrupt included) the temporary file is
    removed and nothing is left. Missing parent folders are created. An OSError (full disk, read-only
    folder, ...) is raised again naming ``path``.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}{TEMP_TAG}", suffix=path.suffix, dir=path.parent)
    except OSError as exc:
        raise _naming(exc, path) from None
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())  # after writing: mkstemp makes 0600, and so do some writers
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _naming(exc, path) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def check_writable(path: str | Path) -> Path:
    """Raise OSError naming ``path`` unless ``atomic_write(path)`` can create it; returns path.

    Checked before expensive work, so that it does not fail at the end: ``path`` must not be a folder,
    and the nearest existing folder above it must accept a new file (tried with a temporary file, removed
    again; nothing is created, so this also catches read-only file systems, where root's permission
    bits do not help, and paths below a regular file).
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a folder, expected a file path", str(path))
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, f"cannot create it: {parent} is not a folder", str(path))
    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as exc:
        raise OSError(exc.errno, f"cannot write in {parent}: {exc.strerror}", str(path)) from None
    return path


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


def _naming(exc: OSError, path: Path) -> OSError:
    """The same error, reported for ``path`` (the temporary file's name means nothing to a user)."""
    return OSError(exc.errno, exc.strerror or str(exc), str(path))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
