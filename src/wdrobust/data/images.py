"""Image data sets from one ``.npz`` file: x of shape (N, C, H, W), labels y (or x_train, y_train, x_test,
y_test).

Pixels are used as they are, never rescaled: uint8 arrays are divided by 255, floating-point arrays must
already lie in [0, 1] (anything else is refused, naming the range found and pointing at --mean/--std for
normalised images). Labels are the file's own class indices (as for tabular files,
``tabular.class_labels``). A file without given splits is never split: x, y are both its train and its
test part (evaluation uses every image; ``train`` holds out its own validation part). A ``.npz`` whose x
(or x_train, x_test) is 4-D is an image file; 2-D is a tabular file (``data.tabular``).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from wdrobust.data.tabular import class_labels, read_npz

#: Number of dimensions of an image array: (N, C, H, W).
IMAGE_NDIM = 4


def _array_ndim(path: Path, key: str) -> int | None:
    """The number of dimensions of array ``key`` of an npz file, read from its .npy header only."""
    try:
        with zipfile.ZipFile(path) as archive, archive.open(f"{key}.npy") as f:
            version = np.lib.format.read_magic(f)
            fmt = np.lib.format
            reader = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, _, _ = reader(f)
    except (KeyError, OSError, ValueError, zipfile.BadZipFile):
        return None
    return len(shape)


def is_image_npz(name: str | Path) -> bool:
    """True when ``name`` is an existing .npz file whose x (or x_train, x_test) array is 4-D (N, C, H, W)."""
    path = Path(name)
    if path.suffix.lower() != ".npz" or not path.is_file():
        return False
    return any(_array_ndim(path, key) == IMAGE_NDIM for key in ("x", "x_train", "x_test"))


def _pixels(path: Path, x: np.ndarray, name: str) -> np.ndarray:
    """float32 (N, C, H, W) in [0, 1]: uint8 / 255, or a float array already in [0, 1] (checked)."""
    if x.ndim != IMAGE_NDIM:
        raise ValueError(f"{path}: {name} must be a 4-D (N, C, H, W) image array, got shape {x.shape}")
    if x.dtype == np.uint8:
        return x.astype(np.float32) / 255.0
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{path}: {name} must be uint8 or floating point in [0, 1], got dtype {x.dtype}")
    if not np.isfinite(x).all():
        raise ValueError(f"{path}: {name} contains NaN or infinity")
    if x.size and (x.min() < 0 or x.max() > 1):
        raise ValueError(
            f"{path}: {name} must lie in [0, 1] (images are not rescaled); found [{x.min():.4g}, "
            f"{x.max():.4g}]: save the raw pixels (uint8 or [0, 1]), a normalisation goes to --mean/--std"
        )
    return x.astype(np.float32)


def _pair(path: Path, arrays: dict[str, np.ndarray], xk: str, yk: str) -> tuple[np.ndarray, np.ndarray]:
    x = _pixels(path, arrays[xk], xk)
    y = class_labels(np.asarray(arrays[yk]), path, yk)
    if len(x) != len(y):
        raise ValueError(f"{path}: {xk} has {len(x)} images but {yk} has {len(y)} labels")
    return x, y


def read_image_npz(path: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """x float32 (N, C, H, W) in [0, 1] and y int64 (N,) of one split of an image .npz file: the arrays
    x_<split>, y_<split> when the file has them, else all of x, y (a file without given splits)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image data file {path} not found")
    arrays = read_npz(path)
    if {f"x_{split}", f"y_{split}"} <= set(arrays):
        return _pair(path, arrays, f"x_{split}", f"y_{split}")
    if not {"x", "y"} <= set(arrays):
        raise ValueError(f"{path}: expected arrays x and y (or x_{split} and y_{split})")
    return _pair(path, arrays, "x", "y")


def image_info(path: str | Path) -> tuple[tuple[int, ...], int]:
    """(C, H, W) and K = largest label + 1 of an image .npz file (over the splits it holds)."""
    arrays = read_npz(Path(path))
    x_key = "x" if "x" in arrays else "x_train" if "x_train" in arrays else "x_test"
    labels = [np.asarray(arrays[k]) for k in ("y", "y_train", "y_test") if k in arrays]
    if x_key not in arrays or not labels:
        raise ValueError(f"{path}: expected arrays x and y (or x_train, y_train, x_test, y_test)")
    top = max((int(class_labels(y, Path(path), "y").max(initial=-1)) for y in labels), default=-1)
    return tuple(int(s) for s in arrays[x_key].shape[1:]), top + 1
