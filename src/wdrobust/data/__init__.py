"""Data readers: scikit-learn digits (offline default), MNIST and Fashion-MNIST idx files, CIFAR-10/100
pickle batches, image .npz files (x (N, C, H, W)) and tabular .npz/.csv files. Nothing is ever downloaded.

``load(name, split, root=None, device=None) -> (x, y)``; ``DATASETS`` (data/registry.py) holds each
set's input shape, number of classes, reader and help text; ``info(name)`` also covers tabular files,
whose features are scaled by a ``Scaling`` (``scaling_of(name)``; a model trained on one keeps it in its
sidecar). A data file is split only as it says: x_train, y_train and x_test, y_test; a file of x, y is
read whole for either split (``has_test_split`` tells them apart).
"""

from wdrobust.data.base import DATA_ENV, SPLITS
from wdrobust.data.registry import (
    DATASETS,
    DEFAULT_DATASET,
    DatasetInfo,
    has_test_split,
    info,
    load,
    scaling_of,
)
from wdrobust.data.tabular import Scaling, TabularData, read_tabular

__all__ = [
    "DATASETS",
    "DATA_ENV",
    "DEFAULT_DATASET",
    "SPLITS",
    "DatasetInfo",
    "Scaling",
    "TabularData",
    "has_test_split",
    "info",
    "load",
    "read_tabular",
    "scaling_of",
]
