"""Pieces shared by the data readers: split names, the data root and seeded (stratified) splits."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

SPLITS = ("train", "test")
#: Environment variable naming the default data root (else ./data under the current directory).
DATA_ENV = "WDROBUST_DATA"


def check_split(split: str) -> str:
    """Return split if it is 'train' or 'test', else raise ValueError."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: expected one of {', '.join(SPLITS)}")
    return split


def data_root(root: str | Path | None) -> Path:
    """The data directory: ``root`` if given, else $WDROBUST_DATA, else ./data."""
    return Path(root if root is not None else os.environ.get(DATA_ENV, "data"))


def stratified_split(y: np.ndarray, n_test: int | float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of indices 0..N-1 into (train, test), each sorted.

    n_test: the number of test samples (int) or their fraction (float; ceil(n_test N) samples). Every
    class keeps its share when it can (each class has two samples, each part room for one of every
    class); otherwise, as in a small file, the split is a plain seeded one. ValueError when a part would
    be empty.
    """
    from sklearn.model_selection import train_test_split  # slow import: only when splitting

    idx = np.arange(len(y))
    held = n_test if isinstance(n_test, int) else math.ceil(n_test * len(y))
    counts = np.unique(y, return_counts=True)[1]
    stratify = y if counts.size and counts.min() >= 2 and min(held, len(y) - held) >= counts.size else None
    try:
        train, test = train_test_split(idx, test_size=n_test, random_state=seed, stratify=stratify)
    except ValueError as exc:
        raise ValueError(f"cannot split the data into train and test: {str(exc).splitlines()[0]}") from None
    return np.sort(train), np.sort(test)
