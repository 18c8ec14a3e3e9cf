"""Filesystems for fault tests: a tmpfs mounted where this machine allows it."""

from __future__ import annotations

import contextlib
import shutil
import subprocess

import pytest


def _mount_tmpfs(folder, options):
    """Mount a tmpfs on folder (root only); False when this machine does not allow it."""
    if shutil.which("mount") is None:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    return done.returncode == 0


@contextlib.contextmanager
def tmpfs(folder, options):
    """folder mounted as a tmpfs with the given options for the block (skips the test where not allowed)."""
    folder.mkdir()
    if not _mount_tmpfs(folder, options):
        pytest.skip(f"cannot mount a tmpfs ({options}) here: needs root with CAP_SYS_ADMIN")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)
