"""Data readers on small files in the exact official formats: digits, MNIST idx, CIFAR pickles, tabular."""

from __future__ import annotations

import gzip
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from wdrobust import data
from wdrobust._serde import from_json, to_json
from wdrobust.cli import app

RNG = np.random.default_rng(0)


def test_digits_fixed_stratified_split():
    x_tr, y_tr = data.load("digits", "train", device="cpu")
    x_te, y_te = data.load("digits", "test", device="cpu")
    assert x_tr.shape == (1347, 1, 8, 8) and x_te.shape == (450, 1, 8, 8)
    assert x_tr.dtype == torch.float32 and y_tr.dtype == torch.int64
    assert x_tr.min() >= 0 and x_tr.max() == 1.0
    assert (torch.bincount(y_te, minlength=10) >= 43).all()  # stratified: ~45 per class
    x_again, y_again = data.load("digits", "test", device="cpu")
    assert torch.equal(x_te, x_again) and torch.equal(y_te, y_again)
    # the splits are disjoint: no test image appears among the training images
    flat_tr = {tuple(r) for r in x_tr.reshape(len(x_tr), -1).tolist()}
    assert (
        sum(tuple(r) in flat_tr for r in x_te.reshape(len(x_te), -1).tolist()) < 5
    )  # a few duplicates exist
    assert data.DATASETS["digits"].input_shape == (1, 8, 8) and data.info("digits").num_classes == 10


def test_unknown_name_and_split():
    with pytest.raises(ValueError, match="unknown data set 'svhn'"):
        data.load("svhn", "test")
    with pytest.raises(ValueError, match="unknown split 'val'"):
        data.load("digits", "val")


# --- MNIST idx ---------------------------------------------------------------------------------------


def _idx(array: np.ndarray, magic: int) -> bytes:
    return struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def _write_mnist(folder: Path, n: int = 7, gz: bool = False) -> tuple[np.ndarray, np.ndarray]:
    folder.mkdir(parents=True, exist_ok=True)
    images = RNG.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = RNG.integers(0, 10, n).astype(np.uint8)
    for prefix in ("train", "t10k"):
        for stem, payload in ((f"{prefix}-images-idx3-ubyte", _idx(images, 2051)),
                              (f"{prefix}-labels-idx1-ubyte", _idx(labels, 2049))):  # fmt: skip
            if gz:
                (folder / f"{stem}.gz").write_bytes(gzip.compress(payload))
            else:
                (folder / stem).write_bytes(payload)
    return images, labels


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_round_trip(tmp_path, gz):
    images, labels = _write_mnist(tmp_path / "MNIST" / "raw", gz=gz)
    x, y = data.load("mnist", "test", root=tmp_path, device="cpu")
    assert x.shape == (7, 1, 28, 28) and x.dtype == torch.float32
    np.testing.assert_allclose(x[:, 0].numpy() * 255, images, atol=1e-4)
    assert y.tolist() == labels.tolist()


def _break(path: Path, kind: str) -> None:
    raw = path.read_bytes()
    path.write_bytes(struct.pack(">I", 2050) + raw[4:] if kind == "magic" else raw[:-5])


@pytest.mark.parametrize(
    ("kind", "message"), [("magic", "magic number 2050, expected 2051"), ("truncated", "header")]
)
def test_mnist_malformed(tmp_path, kind, message):
    _write_mnist(tmp_path)
    _break(tmp_path / "train-images-idx3-ubyte", kind)
    with pytest.raises(ValueError, match=message):
        data.load("mnist", "train", root=tmp_path)


def test_mnist_missing_names_expected_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"t10k-images-idx3-ubyte\[\.gz\].*MNIST database"):
        data.load("mnist", "test", root=tmp_path / "nowhere")


def test_mnist_label_count_and_range(tmp_path):
    _write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(_idx(np.array([1, 2, 12], np.uint8), 2049))
    with pytest.raises(ValueError, match="3 labels for 7 images"):
        data.load("mnist", "test", root=tmp_path)


@pytest.mark.parametrize("breakage", ["missing", "magic", "truncated"])
def test_cli_train_bad_mnist_exit_2_without_checkpoint(tmp_path, monkeypatch, breakage):
    monkeypatch.chdir(tmp_path)
    if breakage != "missing":
        _write_mnist(tmp_path / "mnist")
        _break(tmp_path / "mnist" / "train-labels-idx1-ubyte", breakage)
    result = CliRunner().invoke(app, ["train", "--data", "mnist", "--root", ".", "--out", "m.safetensors"])
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and len(result.output.strip().splitlines()) == 1
    assert not list(tmp_path.glob("m.*"))


# --- CIFAR pickles -----------------------------------------------------------------------------------


def _batch(n: int, label_key: bytes, classes: int) -> dict:
    return {
        b"batch_label": b"testing batch 1 of 1",
        b"data": RNG.integers(0, 256, (n, 3072), dtype=np.uint8),
        label_key: RNG.integers(0, classes, n).tolist(),
        b"filenames": [b"img.png"] * n,
    }


def _dump(path: Path, obj: object, legacy_numpy_name: bool = False) -> None:
    """Protocol 2-style GLOBAL opcodes (protocol 3: bytes stay bytes); optionally numpy 1's module name."""
    raw = pickle.dumps(obj, protocol=3)
    if legacy_numpy_name:
        raw = raw.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
    path.write_bytes(raw)


@pytest.mark.parametrize("legacy", [False, True])
def test_cifar10_round_trip(tmp_path, legacy):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batches = [_batch(3, b"labels", 10) for _ in range(6)]
    for i, batch in enumerate(batches[:5]):
        _dump(folder / f"data_batch_{i + 1}", batch, legacy)
    _dump(folder / "test_batch", batches[5], legacy)
    x, y = data.load("cifar10", "train", root=tmp_path, device="cpu")
    assert x.shape == (15, 3, 32, 32) and y.shape == (15,)
    expected = np.concatenate([b[b"data"] for b in batches[:5]]).reshape(15, 3, 32, 32)
    np.testing.assert_allclose(x.numpy() * 255, expected, atol=1e-4)
    assert y.tolist() == [label for b in batches[:5] for label in b[b"labels"]]
    assert data.load("cifar10", "test", root=tmp_path)[0].shape == (3, 3, 32, 32)


def test_cifar100_fine_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    train = _batch(4, b"fine_labels", 100) | {b"coarse_labels": [0, 1, 2, 3]}
    _dump(folder / "train", train)
    _dump(folder / "test", _batch(2, b"fine_labels", 100))
    x, y = data.load("cifar100", "train", root=tmp_path, device="cpu")
    assert x.shape == (4, 3, 32, 32) and y.tolist() == train[b"fine_labels"]


class _Payload:
    def __reduce__(self):
        return (print, ("unpickling executed code",))


def test_cifar_refuses_foreign_globals(tmp_path, capsys):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    _dump(folder / "test", {b"data": _Payload(), b"fine_labels": [0]})
    with pytest.raises(ValueError, match=r"refusing global builtins\.print"):
        data.load("cifar100", "test", root=tmp_path)
    assert "executed" not in capsys.readouterr().out


def test_cifar_missing_and_malformed(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"cifar-10-batches-py/data_batch_1.*CIFAR page"):
        data.load("cifar10", "train", root=tmp_path)
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    (folder / "test").write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8)}, protocol=3)[:-9])
    with pytest.raises(ValueError, match="not a CIFAR batch"):
        data.load("cifar100", "test", root=tmp_path)
    _dump(folder / "test", {b"data": np.zeros((2, 100), np.uint8), b"fine_labels": [0, 1]})
    with pytest.raises(ValueError, match=r"expected \(n, 3072\) uint8"):
        data.load("cifar100", "test", root=tmp_path)


# --- tabular -----------------------------------------------------------------------------------------


def test_csv_header_labels_as_given_whole_file_and_its_scaling(tmp_path):
    path = tmp_path / "iris.csv"
    rows = [f"{i},{10 * (i % 7) - 5},{2 * (i % 2)}" for i in range(40)]  # labels 0 and 2: class 1 absent
    path.write_text("a,b,label\n" + "\n".join(rows) + "\n")
    x_tr, y_tr = data.load(str(path), "train", device="cpu")
    x_te, y_te = data.load(str(path), "test", device="cpu")
    # no given splits: both parts are the whole file, in file order, scaled by the whole file's min/max
    assert x_tr.shape == (40, 2) and torch.equal(x_tr, x_te) and torch.equal(y_tr, y_te)
    assert x_tr.amin(0).tolist() == [0.0, 0.0] and x_tr.amax(0).tolist() == [1.0, 1.0]
    assert y_te.tolist() == [2 * (i % 2) for i in range(40)]
    table = data.read_tabular(path)
    raw = np.array([[i, 10 * (i % 7) - 5] for i in range(40)], dtype=float)
    np.testing.assert_allclose(table.scaling.lo, raw.min(0))
    np.testing.assert_allclose(table.scaling.hi, raw.max(0))
    np.testing.assert_allclose(table.x_test, (raw - raw.min(0)) / (raw.max(0) - raw.min(0)), atol=1e-6)
    assert data.info(str(path)).input_shape == (2,) and data.info(str(path)).num_classes == 3
    assert to_json(data.scaling_of(str(path))) == to_json(table.scaling)
    assert data.scaling_of("digits") is None
    assert not data.has_test_split(str(path)) and data.has_test_split("digits")


def test_npz_given_splits_labels_kept(tmp_path):
    path = tmp_path / "t.npz"
    x_train = np.array([[0.0, 2.0], [4.0, 2.0], [2.0, 6.0]])
    np.savez(
        path,
        x_train=x_train,
        y_train=np.array([3, 7, 3]),
        x_test=np.array([[8.0, 0.0]]),
        y_test=np.array([7]),
    )
    x, y = data.load(str(path), "train", device="cpu")
    np.testing.assert_allclose(x.numpy(), [[0, 0], [1, 0], [0.5, 1]])
    assert y.tolist() == [3, 7, 3]  # the file's labels, not codes
    x, y = data.load(str(path), "test", device="cpu")
    assert x.tolist() == [[1.0, 0.0]] and y.tolist() == [7]  # 8 clipped to 1, 0 clipped to 0


def test_given_scaling_is_applied_not_the_files_own(tmp_path):
    path = tmp_path / "t.npz"
    np.savez(path, x_train=np.array([[1.0], [3.0]]), y_train=np.array([0, 1]), x_test=np.array([[3.0]]),
             y_test=np.array([1]))  # fmt: skip
    scaling = data.Scaling(np.array([0.0]), np.array([4.0]))
    assert data.load(str(path), "test", scaling=scaling)[0].tolist() == [[0.75]]
    assert data.load(str(path), "test")[0].tolist() == [[1.0]]  # the file's own train split: [1, 3]
    assert data.load(str(path), "train", scaling=scaling)[0].tolist() == [[0.25], [0.75]]
    assert to_json(from_json(data.Scaling, to_json(scaling))) == to_json(scaling)
    with pytest.raises(ValueError, match="feature count 1 differs from the 2 of the feature scaling"):
        data.load(str(path), "test", scaling=data.Scaling(np.zeros(2), np.ones(2)))
    with pytest.raises(ValueError, match=r"m\.json: input_scaling\.hi: expected a list of numbers"):
        from_json(data.Scaling, {"kind": "minmax", "lo": [0.0], "hi": "x"}, "m.json: input_scaling")


def test_tabular_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="tabular data file"):
        data.load(str(tmp_path / "none.csv"), "train")
    bad = tmp_path / "bad.csv"
    bad.write_text("1,2,0\n3,x,1\n")
    with pytest.raises(ValueError, match="non-numeric feature"):
        data.load(str(bad), "train")
    obj = tmp_path / "obj.npz"
    np.savez(obj, x=np.array([{"a": 1}], dtype=object), y=np.array([0]))
    with pytest.raises(ValueError, match="not a readable npz"):
        data.load(str(obj), "train")
    nan = tmp_path / "nan.npz"
    np.savez(nan, x=np.array([[np.nan], [1.0]] * 4), y=np.array([0, 1] * 4))
    with pytest.raises(ValueError, match="NaN"):
        data.load(str(nan), "train")


@pytest.mark.parametrize(
    ("y", "message"),
    [
        (np.array(["cat", "dog"] * 4), "labels must be integer class indices 0, 1, ...; found 'cat', 'dog'"),
        (np.array([0, -1] * 4), "found -1"),
        (np.array([0, 1.5] * 4), "found 1.5"),
        (np.zeros((8, 2), dtype=int), r"y must be a 1-D array of labels, got shape \(8, 2\)"),
        (np.array([0, 1] * 3), "x has 8 rows but y has 6"),
    ],
)
def test_tabular_labels_must_be_class_indices_of_every_row(tmp_path, y, message):
    path = tmp_path / "t.npz"
    np.savez(path, x=np.random.default_rng(0).random((8, 3)), y=y)
    with pytest.raises(ValueError, match=message):
        data.load(str(path), "test")


# --- the registry: a data set is one reader and one registry line -----------------------------------

TOY = """
import numpy as np
from wdrobust.data import DATASETS, DatasetInfo


def read_toy(split, root):
    x = np.linspace(0, 1, 24, dtype=np.float32).reshape(6, 1, 2, 2)
    return (x, np.arange(6, dtype=np.int64) % 3) if split == "train" else (x[:2], np.array([0, 2]))


DATASETS["toy"] = DatasetInfo("toy", (1, 2, 2), 3, "a toy set for the test", read_toy, uses_root=True)
"""


def test_a_registered_data_set_loads_and_is_named_in_the_cli_help(monkeypatch, tmp_path):
    """Register a toy reader (what a new data set's module and registry line do): data.load and info
    read it, and the --data / --root help of every subcommand that loads data names it."""
    scope: dict = {}
    exec(TOY, scope)
    monkeypatch.setitem(data.DATASETS, "toy", scope["DATASETS"]["toy"])
    x, y = data.load("toy", "test", device="cpu")
    assert x.shape == (2, 1, 2, 2) and y.tolist() == [0, 2] and data.info("toy").num_classes == 3
    script = tmp_path / "help.py"
    commands = ("attack", "certify", "evaluate", "train")
    script.write_text(
        TOY
        + "from typer.testing import CliRunner\nfrom wdrobust.cli import app\n"
        + f"for name in {commands!r}:\n"
        + "    print(CliRunner().invoke(app, [name, '--help'], terminal_width=400).output)\n"
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True).stdout
    helps = out.split("Usage:")[1:]
    assert len(helps) == len(commands)
    for text in helps:
        flat = " ".join(text.replace("│", " ").split())
        assert "toy (a toy set for the test)" in flat and "cifar100, toy files" in flat, flat
