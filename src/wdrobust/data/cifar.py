"""CIFAR-10 / CIFAR-100 from the official python pickle batches, unpickled safely, never downloaded.

CIFAR-10: cifar-10-batches-py/data_batch_1..5 (train) and test_batch, dicts with b'data' (n, 3072) uint8
(channel-major 3 x 32 x 32) and b'labels'. CIFAR-100: cifar-100-python/train and test with b'fine_labels'.
The unpickler admits only numpy's array reconstruction; any other global in the file is refused.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from wdrobust.data.base import check_split

_RECONSTRUCT = np.ndarray.__reduce__(np.zeros(1))[0]
#: (module, name) pairs a CIFAR batch may reference: numpy's array reconstruction and nothing else.
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}

LAYOUTS = {
    # name: (folder, train files, test files, label key, classes)
    "cifar10": (
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        ("test_batch",),
        b"labels",
        10,
    ),
    "cifar100": ("cifar-100-python", ("train",), ("test",), b"fine_labels", 100),
}
OFFICIAL = (
    "official files: the CIFAR page, www.cs.toronto.edu/~kriz/cifar.html (python version); "
    "wdrobust never downloads"
)


class ArrayUnpickler(pickle.Unpickler):
    """An Unpickler whose find_class resolves only ALLOWED_GLOBALS and refuses everything else."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing global {module}.{name}: CIFAR batches hold only numpy arrays"
            ) from None


def safe_unpickle(path: Path) -> Any:
    """Unpickle a (Python 2 or 3) CIFAR batch with ArrayUnpickler; byte strings stay bytes."""
    try:
        return ArrayUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError) as exc:
        raise ValueError(
            f"{path}: not a CIFAR batch ({str(exc).splitlines()[0] or type(exc).__name__})"
        ) from None


def _batch(path: Path, label_key: bytes, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """x uint8 (n, 3, 32, 32) and y int64 (n,) from one batch file, with its keys and sizes checked."""
    batch = safe_unpickle(path)
    if not isinstance(batch, dict) or b"data" not in batch or label_key not in batch:
        raise ValueError(f"{path}: not a CIFAR batch (expected a dict with b'data' and {label_key!r})")
    data = np.asarray(batch[b"data"])
    labels = np.asarray(batch[label_key], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(
            f"{path}: b'data' has shape {data.shape} and dtype {data.dtype}, expected (n, 3072) uint8"
        )
    if labels.shape != (len(data),):
        raise ValueError(f"{path}: {labels.size} labels for {len(data)} images")
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(f"{path}: labels outside 0..{classes - 1}")
    return data.reshape(-1, 3, 32, 32), labels


def read_cifar(name: str, split: str, root: Path) -> tuple[np.ndarray, np.ndarray]:
    """x float32 (N, 3, 32, 32) = bytes / 255 and y int64 (N,) for cifar10 or cifar100 (fine labels)."""
    folder, train_files, test_files, label_key, classes = LAYOUTS[name]
    files = train_files if check_split(split) == "train" else test_files
    base = root / folder if (root / folder).is_dir() else root
    missing = [f for f in files if not (base / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{name} batches not found in {root}: expected {folder}/{', '.join(files)} ({OFFICIAL})"
        )
    parts = [_batch(base / f, label_key, classes) for f in files]
    x = np.concatenate([p[0] for p in parts]).astype(np.float32) / 255.0
    return x, np.concatenate([p[1] for p in parts])
