"""The data set registry and ``load``: one entry point for every reader, tensors on the chosen device."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from wdrobust._device import resolve_device
from wdrobust.data.base import check_split, data_root
from wdrobust.data.cifar import read_cifar
from wdrobust.data.digits import read_digits
from wdrobust.data.images import image_info, is_image_npz, read_image_npz
from wdrobust.data.mnist import IDX_SETS, read_mnist
from wdrobust.data.tabular import Scaling, is_tabular, read_tabular


@dataclass(frozen=True)
class DatasetInfo:
    """A data set's sample shape, number of classes and where its files come from."""

    name: str
    input_shape: tuple[int, ...]
    num_classes: int
    source: str


DATASETS: dict[str, DatasetInfo] = {
    "digits": DatasetInfo("digits", (1, 8, 8), 10, "bundled with scikit-learn (offline)"),
    "mnist": DatasetInfo("mnist", (1, 28, 28), 10, "idx files in the data root"),
    "fashion-mnist": DatasetInfo("fashion-mnist", (1, 28, 28), 10, "idx files in the data root"),
    "cifar10": DatasetInfo("cifar10", (3, 32, 32), 10, "python pickle batches in the data root"),
    "cifar100": DatasetInfo("cifar100", (3, 32, 32), 100, "python pickle batches in the data root"),
}
DEFAULT_DATASET = "digits"


def _check_name(name: str) -> str:
    if name not in DATASETS and not is_tabular(name):
        raise ValueError(
            f"unknown data set {name!r}: expected one of {', '.join(DATASETS)} or a .npz/.csv file"
        )
    return name


def _read(
    name: str, split: str, root: str | Path | None, scaling: Scaling | None
) -> tuple[np.ndarray, np.ndarray]:
    """Numpy (x float32, y int64) of one split from the matching reader."""
    if is_image_npz(name):
        return read_image_npz(name, split)
    if is_tabular(name):
        data = read_tabular(name, scaling)
        return (data.x_train, data.y_train) if split == "train" else (data.x_test, data.y_test)
    if name == "digits":
        return read_digits(split)
    if name in IDX_SETS:
        return read_mnist(split, data_root(root), name)
    return read_cifar(name, split, data_root(root))


def load(
    name: str = DEFAULT_DATASET,
    split: str = "test",
    root: str | Path | None = None,
    device: str | torch.device | None = None,
    scaling: Scaling | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One split of a data set as (x float32 in [0, 1], y int64 (N,)) on ``device``.

    name: digits (default), mnist, fashion-mnist, cifar10, cifar100, or a path to a .npz file of images
    (x of shape (N, C, H, W), see ``data.images``) or a .npz/.csv tabular file.
    Images are (N, C, H, W); tabular samples (N, F). root: directory of the mnist/fashion-mnist/cifar files
    (default $WDROBUST_DATA, else ./data). scaling: the feature scaling of a tabular file (a model's, see
    ``data.tabular``; None: the file's own); image sets ignore it. Missing or malformed files raise
    FileNotFoundError/ValueError.
    """
    x, y = _read(_check_name(name), check_split(split), root, scaling)
    dev = resolve_device(device)
    return torch.from_numpy(np.ascontiguousarray(x)).to(dev), torch.from_numpy(np.ascontiguousarray(y)).to(
        dev
    )


def info(name: str) -> DatasetInfo:
    """DatasetInfo of a registered data set, or of an image or tabular file (read to find its shape and K)."""
    if not is_tabular(_check_name(name)):
        return DATASETS[name]
    if is_image_npz(name):
        shape, classes = image_info(name)
        return DatasetInfo(name, shape, classes, "image file")
    data = read_tabular(name)
    return DatasetInfo(name, (data.x_train.shape[1],), data.num_classes, "tabular file")


def scaling_of(name: str) -> Scaling | None:
    """The feature scaling ``load`` applies by default: a tabular file's train-split min/max; None for
    image data sets and image files (already in [0, 1])."""
    tabular = is_tabular(_check_name(name)) and not is_image_npz(name)
    return read_tabular(name).scaling if tabular else None
