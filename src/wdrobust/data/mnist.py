"""MNIST and Fashion-MNIST from the official idx files (plain or gzip), never downloaded.

idx format: big-endian int32 magic (2051 images, 2049 labels), then one big-endian int32 per dimension,
then unsigned bytes. Both sets use the same file names; files are searched in root and in the set's usual
sub-folders (``IDX_SETS``): root/mnist, root/MNIST/raw; root/fashion-mnist, root/FashionMNIST/raw. The
Debian package ``dataset-fashion-mnist`` installs Fashion-MNIST in /usr/share/datasets/fashion-mnist.
"""

from __future__ import annotations

import gzip
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wdrobust.data.base import check_split

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


@dataclass(frozen=True)
class IdxSet:
    """A data set in MNIST's idx layout: its display name, the sub-folders of the data root searched after
    the root itself, and where its official files come from (quoted when they are missing)."""

    title: str
    folders: tuple[str, ...]
    official: str


IDX_SETS: dict[str, IdxSet] = {
    "mnist": IdxSet(
        "MNIST",
        ("mnist", "MNIST/raw"),
        "official files: the MNIST database page, yann.lecun.com/exdb/mnist; wdrobust never downloads",
    ),
    "fashion-mnist": IdxSet(
        "Fashion-MNIST",
        ("fashion-mnist", "FashionMNIST/raw"),
        "official files: github.com/zalandoresearch/fashion-mnist, or `apt-get install dataset-fashion-mnist`"
        " (then --root /usr/share/datasets/fashion-mnist); wdrobust never downloads",
    ),
}


def _find(root: Path, stem: str, folders: tuple[str, ...]) -> Path | None:
    """The first existing ``stem`` or ``stem.gz`` in root, then in root/<folder> for each folder."""
    for folder in (root, *(root / f for f in folders)):
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    return None


def read_idx(path: Path, magic: int) -> np.ndarray:
    """The uint8 array of an idx file, after checking its magic number and its exact size."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise ValueError(f"{path}: corrupt gzip file ({exc})") from None
    if len(raw) < 4:
        raise ValueError(f"{path}: truncated idx file (no header)")
    got = int.from_bytes(raw[:4], "big")
    if got != magic:
        raise ValueError(f"{path}: idx magic number {got}, expected {magic}; not an idx file of this kind")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated idx header")
    dims = tuple(int.from_bytes(raw[4 + 4 * k : 8 + 4 * k], "big") for k in range(ndim))
    if len(raw) != header + math.prod(dims):
        raise ValueError(
            f"{path}: idx file has {len(raw) - header} data bytes, its header {dims} says {math.prod(dims)}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def read_mnist(split: str, root: Path, name: str = "mnist") -> tuple[np.ndarray, np.ndarray]:
    """x float32 (N, 1, 28, 28) = bytes / 255 and y int64 (N,) in 0..9 from the idx files of the split of
    ``name`` (a key of IDX_SETS: mnist or fashion-mnist)."""
    stems = FILES[check_split(split)]
    spec = IDX_SETS[name]
    paths = [_find(root, stem, spec.folders) for stem in stems]
    if None in paths:
        expected = ", ".join(f"{s}[.gz]" for s in stems)
        raise FileNotFoundError(
            f"{spec.title} idx files not found in {root}: expected {expected} ({spec.official})"
        )
    images = read_idx(paths[0], IMAGES_MAGIC)
    labels = read_idx(paths[1], LABELS_MAGIC)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"{paths[0]}: images of shape {images.shape[1:]}, expected (28, 28)")
    if labels.ndim != 1 or len(labels) != len(images):
        raise ValueError(f"{paths[1]}: {len(labels)} labels for {len(images)} images")
    if labels.size and labels.max() > 9:
        raise ValueError(f"{paths[1]}: label {labels.max()} outside 0..9")
    return (images.astype(np.float32) / 255.0)[:, None], labels.astype(np.int64)
