"""Tabular data sets from one ``.npz`` (arrays x, y; or x_train, y_train, x_test, y_test) or ``.csv``
(features, then the label in the last column; an optional header row) file.

Labels are mapped to 0..K-1 in sorted order of their values. Without given splits, the samples are split
25% test, stratified, seed 0. Features are scaled to [0, 1] with the per-feature min and max of the train
split, (x - lo) / (hi - lo) (constant features map to 0), and test values are clipped to [0, 1].
Samples have shape (F,): x is (N, F).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wdrobust.data.base import stratified_split

SUFFIXES = (".npz", ".csv")
TEST_FRACTION = 0.25
SEED = 0


@dataclass(frozen=True)
class TabularData:
    """Both splits after scaling; lo, hi (F,) are the train min/max used; classes (K,) the raw labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    classes: np.ndarray


def is_tabular(name: str) -> bool:
    """True when ``name`` names a tabular file (by its suffix)."""
    return Path(name).suffix.lower() in SUFFIXES


def _label_codes(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(classes, codes): sorted distinct labels (numerically when all are numbers) and indices into them."""
    try:
        labels = labels.astype(np.float64)
    except ValueError:
        labels = labels.astype(str)
    classes, codes = np.unique(labels, return_inverse=True)
    return classes, codes.astype(np.int64)


def _read_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Raw features (N, F) float64 and raw labels (N,) from a csv file with the label last."""
    with path.open(newline="") as f:
        rows = [row for row in csv.reader(f) if row]
    if rows:
        try:
            [float(v) for v in rows[0][:-1]]
        except ValueError:
            rows = rows[1:]  # a header row
    if not rows or len(rows[0]) < 2:
        raise ValueError(f"{path}: expected rows of at least one feature and a label")
    if any(len(r) != len(rows[0]) for r in rows):
        raise ValueError(f"{path}: rows have different numbers of columns")
    table = np.asarray(rows, dtype=str)
    try:
        x = table[:, :-1].astype(np.float64)
    except ValueError as exc:
        raise ValueError(f"{path}: non-numeric feature value ({exc})") from None
    return x, table[:, -1]


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an npz file (no pickled objects allowed)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {k: archive[k] for k in archive.files}
    except (ValueError, OSError) as exc:
        raise ValueError(f"{path}: not a readable npz file of plain arrays ({exc})") from None


def _splits(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, raw y_train, x_test, raw y_test) as given by the file or by the seeded split."""
    if path.suffix.lower() == ".npz":
        arrays = _read_npz(path)
        if {"x_train", "y_train", "x_test", "y_test"} <= set(arrays):
            return arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"]
        if not {"x", "y"} <= set(arrays):
            raise ValueError(f"{path}: expected arrays x and y (or x_train, y_train, x_test, y_test)")
        x, y = arrays["x"], arrays["y"]
    else:
        x, y = _read_csv(path)
    train, test = stratified_split(np.asarray(y).astype(str), TEST_FRACTION, SEED)
    return x[train], y[train], x[test], y[test]


def read_tabular(path: str | Path) -> TabularData:
    """Read, label-encode, split and min/max-scale a tabular file (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"tabular data file {path} not found (expected .npz with x, y or .csv)")
    x_tr, y_tr, x_te, y_te = _splits(path)
    x_tr, x_te = (np.asarray(a, dtype=np.float64) for a in (x_tr, x_te))
    if x_tr.ndim != 2 or x_te.ndim != 2 or x_tr.shape[1] != x_te.shape[1]:
        raise ValueError(f"{path}: features must be 2-D (N, F) arrays, got {x_tr.shape} and {x_te.shape}")
    if len(y_tr) != len(x_tr) or len(y_te) != len(x_te):
        raise ValueError(f"{path}: feature and label counts differ")
    if not (np.isfinite(x_tr).all() and np.isfinite(x_te).all()):
        raise ValueError(f"{path}: features contain NaN or infinity")
    classes, codes = _label_codes(np.concatenate([np.asarray(y_tr), np.asarray(y_te)]))
    lo, hi = x_tr.min(axis=0), x_tr.max(axis=0)
    scale = np.where(hi > lo, hi - lo, 1.0)
    x_tr, x_te = (np.clip((a - lo) / scale, 0.0, 1.0).astype(np.float32) for a in (x_tr, x_te))
    return TabularData(x_tr, codes[: len(y_tr)], x_te, codes[len(y_tr) :], lo, hi, classes)
