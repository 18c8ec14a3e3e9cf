"""Tabular data sets from one ``.npz`` (arrays x, y; or x_train, y_train, x_test, y_test) or ``.csv``
(features, then the label in the last column; an optional header row) file.

Labels are the file's own class indices: non-negative integers, used as they are (never re-encoded), so
that a file holding some of a model's classes keeps their meaning. A file without given splits is never
split: its samples are both its train and its test part (evaluation uses all of them; ``train`` holds out
its own validation part). Features are scaled to [0, 1] per feature by a ``Scaling``,
(x - lo) / (hi - lo) clipped to [0, 1] (constant features map to 0): by default lo, hi are the min and max
of the file's training data (x_train, or the whole file without given splits); a model trained on tabular
data stores the scaling of its training file in its sidecar, and evaluating it applies that one
(``read_tabular(path, scaling)``). Samples have shape (F,): x is (N, F).
"""

from __future__ import annotations

import csv
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

SUFFIXES = (".npz", ".csv")
#: The arrays of a file with given splits.
GIVEN_SPLITS = ("x_train", "y_train", "x_test", "y_test")
#: How many offending values an error message quotes.
QUOTED = 5


@dataclass(frozen=True, eq=False)
class Scaling:
    """Min/max feature scaling x -> clip((x - lo) / (hi - lo), 0, 1); lo, hi (F,) float64, finite, lo <= hi
    (ValueError otherwise). Its JSON form {"kind": "minmax", "lo": [...], "hi": [...]} is stored in a model's
    sidecar (``_serde.to_json`` / ``from_json``); compare those forms for equality."""

    kind: Literal["minmax"] = field(default="minmax", kw_only=True)
    lo: NDArray[np.float64]
    hi: NDArray[np.float64]

    def __post_init__(self) -> None:
        lo, hi = self.lo, self.hi
        if not (lo.ndim == 1 and lo.shape == hi.shape and np.isfinite([lo, hi]).all() and (hi >= lo).all()):
            raise ValueError("lo and hi must be finite lists of equal length with lo <= hi")

    @classmethod
    def fit(cls, x: np.ndarray) -> Scaling:
        """The per-feature min and max of x (N, F)."""
        return cls(x.min(axis=0).astype(np.float64), x.max(axis=0).astype(np.float64))

    def apply(self, x: np.ndarray, source: str | Path) -> np.ndarray:
        """Scale raw features x (N, F) of ``source`` to float32 in [0, 1]; ValueError if F differs."""
        if x.shape[1] != self.lo.shape[0]:
            raise ValueError(
                f"{source}: feature count {x.shape[1]} differs from the {self.lo.shape[0]} of the feature "
                "scaling (the model's training data)"
            )
        scale = np.where(self.hi > self.lo, self.hi - self.lo, 1.0)
        return np.clip((x - self.lo) / scale, 0.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class TabularData:
    """Both splits after scaling (the same arrays for a file without given splits), the scaling used, and
    K = largest label + 1."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    scaling: Scaling
    num_classes: int


def is_tabular(name: str) -> bool:
    """True when ``name`` names a tabular file (by its suffix)."""
    return Path(name).suffix.lower() in SUFFIXES


def quote_values(values: np.ndarray | list) -> str:
    """Up to QUOTED distinct values, as the data spell them, comma-separated (for error messages)."""
    distinct = list(dict.fromkeys(values.tolist() if isinstance(values, np.ndarray) else values))
    shown = ", ".join(f"{v:g}" if isinstance(v, float) else repr(v) for v in distinct[:QUOTED])
    return shown + (", ..." if len(distinct) > QUOTED else "")


def class_labels(y: np.ndarray, path: Path, name: str) -> np.ndarray:
    """The labels as int64 (N,); ValueError quoting the values that are not non-negative integers."""
    if y.ndim != 1:
        raise ValueError(f"{path}: {name} must be a 1-D array of labels, got shape {y.shape}")
    try:
        values = y.astype(np.float64)
        bad = ~np.isfinite(values) | (values < 0) | (values != np.round(values))
    except ValueError:  # text that is not a number
        values, bad = np.zeros(0), ~np.array([_is_number(v) for v in y.tolist()], dtype=bool)
    if bad.any():
        raise ValueError(
            f"{path}: labels must be integer class indices 0, 1, ...; found {quote_values(y[bad])}"
        )
    return values.astype(np.int64)


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _checked(path: Path, x: Any, y: Any, names: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """(x float64 (N, F), y int64 (N,)) of one pair of arrays, after checking shapes, counts and values."""
    try:
        x = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{path}: {names[0]} must hold numbers") from None
    if x.ndim != 2:
        raise ValueError(
            f"{path}: {names[0]} must be a 2-D (N, F) array (or 4-D (N, C, H, W) images), got shape {x.shape}"
        )
    y = class_labels(np.asarray(y), path, names[1])
    if len(x) != len(y):
        raise ValueError(f"{path}: {names[0]} has {len(x)} rows but {names[1]} has {len(y)}")
    if not np.isfinite(x).all():
        raise ValueError(f"{path}: features contain NaN or infinity")
    return x, y


def _read_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Raw features (N, F) float64 and raw labels (N,) (text) from a csv file with the label last."""
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


def npz_keys(path: str | Path) -> set[str]:
    """The array names of an npz file, read from its zip directory only (empty for anything else)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return {name.removesuffix(".npy") for name in archive.namelist()}
    except (OSError, zipfile.BadZipFile):
        return set()


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of an npz file (no pickled objects allowed)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {k: archive[k] for k in archive.files}
    except (ValueError, OSError) as exc:
        raise ValueError(f"{path}: not a readable npz file of plain arrays ({exc})") from None


def _splits(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Checked (x_train, y_train, x_test, y_test) as given by the file, or its samples twice (no split)."""
    if path.suffix.lower() == ".npz":
        arrays = read_npz(path)
        if set(GIVEN_SPLITS) <= set(arrays):
            train = _checked(path, arrays["x_train"], arrays["y_train"], ("x_train", "y_train"))
            test = _checked(path, arrays["x_test"], arrays["y_test"], ("x_test", "y_test"))
            if train[0].shape[1] != test[0].shape[1]:
                raise ValueError(f"{path}: x_train and x_test have different numbers of features")
            return (*train, *test)
        if not {"x", "y"} <= set(arrays):
            raise ValueError(f"{path}: expected arrays x and y (or x_train, y_train, x_test, y_test)")
        x, y = _checked(path, arrays["x"], arrays["y"], ("x", "y"))
    else:
        x, y = _checked(path, *_read_csv(path), ("features", "labels"))
    return x, y, x, y


def read_tabular(path: str | Path, scaling: Scaling | None = None) -> TabularData:
    """Read, check, split and scale a tabular file (see the module docstring).

    scaling: the model's (from its sidecar); None scales with the min/max of this file's training data.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"tabular data file {path} not found (expected .npz with x, y or .csv)")
    x_tr, y_tr, x_te, y_te = _splits(path)
    if scaling is None:
        if len(x_tr) == 0:
            raise ValueError(f"{path}: the training data are empty")
        scaling = Scaling.fit(x_tr)
    classes = int(max(y_tr.max(initial=-1), y_te.max(initial=-1))) + 1
    return TabularData(scaling.apply(x_tr, path), y_tr, scaling.apply(x_te, path), y_te, scaling, classes)
