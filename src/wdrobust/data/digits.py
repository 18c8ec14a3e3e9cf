"""scikit-learn's bundled handwritten digits (1797 samples of 8x8 pixels, 10 classes): the offline default.

Pixels (0..16) are divided by 16. The train/test split is fixed: a stratified split with 450 test samples
and seed 0 (1347 train / 450 test), identical on every machine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wdrobust.data.base import check_split, stratified_split

N_TEST = 450
SEED = 0


def read_digits(split: str, root: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """x float32 (N, 1, 8, 8) in [0, 1] and y int64 (N,) of the requested split (root: not read, the set
    is bundled; a reader of the registry takes it)."""
    from sklearn.datasets import load_digits  # slow import: only when reading

    check_split(split)
    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[:, None]
    y = bunch.target.astype(np.int64)
    train, test = stratified_split(y, N_TEST, SEED)
    idx = train if split == "train" else test
    return x[idx], y[idx]
