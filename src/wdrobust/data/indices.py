"""Sample selection files (``--indices FILE``): which samples of a split to evaluate, in which order.

A ``.npy`` file holds a 1-D integer array (read without pickles); any other file is text: integers
separated by whitespace or commas, ``#`` starting a comment that runs to the end of the line.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

_SEPARATORS = re.compile(r"[\s,]+")


def read_indices(path: str | Path) -> np.ndarray:
    """The sample indices listed in ``path`` as int64 (K,), K >= 1, in file order.

    Raises FileNotFoundError for a missing file and ValueError (naming the file) for anything that is not
    a list of distinct non-negative integers.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"indices file not found: {path}")
    if path.suffix == ".npy":
        try:
            raw = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise ValueError(f"{path}: not a numpy .npy array of integers ({exc})") from None
        if raw.ndim != 1 or raw.dtype.kind not in "iu":
            raise ValueError(f"{path}: expected a 1-D integer array, got {raw.dtype} of shape {raw.shape}")
        indices = raw.astype(np.int64)
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"{path}: not a text file of integers (or a .npy array)") from None
        words = [w for line in text.splitlines() for w in _SEPARATORS.split(line.split("#", 1)[0]) if w]
        bad = next((w for w in words if not re.fullmatch(r"[+-]?\d+", w)), None)
        if bad is not None:
            raise ValueError(f"{path}: {bad!r} is not an integer sample index")
        indices = np.array([int(w) for w in words], dtype=np.int64)
    if indices.size == 0:
        raise ValueError(f"{path}: lists no sample index")
    if (indices < 0).any():
        raise ValueError(f"{path}: sample indices must be >= 0, found {int(indices.min())}")
    values, counts = np.unique(indices, return_counts=True)
    if (counts > 1).any():
        raise ValueError(f"{path}: sample index {int(values[counts > 1][0])} is listed twice")
    return indices
