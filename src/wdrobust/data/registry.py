"""The data set registry and ``load``: one entry point for every reader, tensors on the chosen device."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch

from wdrobust._device import resolve_device
from wdrobust.data.base import check_split, data_root
from wdrobust.data.cifar import read_cifar
from wdrobust.data.digits import read_digits
from wdrobust.data.images import image_info, is_image_npz, read_image_npz
from wdrobust.data.mnist import read_mnist
from wdrobust.data.tabular import Scaling, is_tabular, npz_keys, read_tabular

#: A data set's reader: (split, data root) -> (x float32 (N, *S) in [0, 1], y int64 (N,)) as numpy arrays.
Reader = Callable[[str, Path], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class DatasetInfo:
    """A data set's sample shape, number of classes and its help text (what it is, where its files come
    from: the CLI's --data help lists it). A registered set also carries its reader and whether its files
    are searched in the data root (the CLI's --root help lists those); image and tabular files have
    neither (``load`` reads them by format)."""

    name: str
    input_shape: tuple[int, ...]
    num_classes: int
    help: str
    read: Reader | None = field(default=None, compare=False, repr=False)
    uses_root: bool = False


#: The registered data sets, by name. Adding one: a module with its reader, and one line here.
DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in (
        DatasetInfo("digits", (1, 8, 8), 10, "scikit-learn's 8x8 digits, offline", read_digits),
        DatasetInfo("mnist", (1, 28, 28), 10, "idx files", partial(read_mnist, name="mnist"), True),
        DatasetInfo(
            "fashion-mnist", (1, 28, 28), 10, "idx files", partial(read_mnist, name="fashion-mnist"), True
        ),
        DatasetInfo("cifar10", (3, 32, 32), 10, "pickle batches", partial(read_cifar, "cifar10"), True),
        DatasetInfo("cifar100", (3, 32, 32), 100, "pickle batches", partial(read_cifar, "cifar100"), True),
    )
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
    return DATASETS[name].read(split, data_root(root))


def load(
    name: str = DEFAULT_DATASET,
    split: str = "test",
    root: str | Path | None = None,
    device: str | torch.device | None = None,
    scaling: Scaling | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One split of a data set as (x float32 in [0, 1], y int64 (N,)) on ``device``.

    name: a registered data set (``DATASETS``: digits (default), mnist, fashion-mnist, cifar10, cifar100)
    or a path to a .npz file of images (x of shape (N, C, H, W), see ``data.images``) or a .npz/.csv
    tabular file. Images are (N, C, H, W); tabular samples (N, F). root: directory of the files of the
    sets that read one (``uses_root``: mnist, fashion-mnist, cifar10, cifar100; default $WDROBUST_DATA,
    else ./data). A file without given splits (x, y only) is read whole for either split. scaling: the
    feature scaling of a tabular file (a model's, see ``data.tabular``; None: the file's own); image sets
    ignore it. Missing or malformed files raise FileNotFoundError/ValueError.
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


def has_test_split(name: str) -> bool:
    """Whether the data hold a test part apart from their training data: a registered set, or a file with
    x_test and y_test. A file without given splits is never split (its samples are both parts)."""
    return not is_tabular(_check_name(name)) or {"x_test", "y_test"} <= npz_keys(name)


def scaling_of(name: str) -> Scaling | None:
    """The feature scaling ``load`` applies by default: the min/max of a tabular file's training data
    (x_train, or the whole file without given splits); None for image data sets and image files (already
    in [0, 1])."""
    tabular = is_tabular(_check_name(name)) and not is_image_npz(name)
    return read_tabular(name).scaling if tabular else None
