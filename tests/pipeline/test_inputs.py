"""Inputs a practitioner brings: Fashion-MNIST idx files as a named data set, image .npz files, plain .pt
checkpoints with --arch (AutoAttack's ResNet-18), --mean/--std normalisation, and --root everywhere."""

from __future__ import annotations

import gzip
import importlib.util
import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from _cli import TINY, invoke, one_line_error

from wdrobust import data, nets
from wdrobust.pipeline.inputs import load_inputs

RNG = np.random.default_rng(3)
FASHION = Path("/usr/share/datasets/fashion-mnist")


def _idx(array: np.ndarray, magic: int) -> bytes:
    return struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def write_fashion(folder: Path, n: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Gzipped idx files in the layout of the Debian package dataset-fashion-mnist (same names as MNIST)."""
    folder.mkdir(parents=True, exist_ok=True)
    images = RNG.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    for prefix in ("train", "t10k"):
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(images, 2051)))
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx(labels, 2049)))
    return images, labels


@pytest.mark.parametrize("sub", ["", "fashion-mnist", "FashionMNIST/raw"])
def test_fashion_mnist_idx_files_by_name(tmp_path, sub):
    images, labels = write_fashion(tmp_path / sub)
    x, y = data.load("fashion-mnist", "test", root=tmp_path, device="cpu")
    assert x.shape == (12, 1, 28, 28) and x.dtype == torch.float32
    np.testing.assert_allclose(x[:, 0].numpy() * 255, images, atol=1e-4)
    assert y.tolist() == labels.tolist()
    assert data.info("fashion-mnist").input_shape == (1, 28, 28)


def test_fashion_mnist_missing_says_where_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"Fashion-MNIST idx files not found.*dataset-fashion-mnist"):
        data.load("fashion-mnist", "train", root=tmp_path)


@pytest.mark.skipif(not FASHION.is_dir(), reason="dataset-fashion-mnist is not installed")
def test_real_fashion_mnist_from_the_debian_package():
    x, y = data.load("fashion-mnist", "test", root=FASHION, device="cpu")
    assert x.shape == (10000, 1, 28, 28) and x.min() >= 0 and x.max() <= 1
    assert np.bincount(y.numpy()).tolist() == [1000] * 10


# --- image .npz ----------------------------------------------------------------------------------------


def test_image_npz_uint8_and_float_read_as_images_not_rescaled(tmp_path):
    raw = RNG.integers(0, 256, (8, 3, 4, 5), dtype=np.uint8)
    np.savez(tmp_path / "u8.npz", x_test=raw, y_test=np.arange(8) % 3)
    x, y = data.load(str(tmp_path / "u8.npz"), "test", device="cpu")
    assert x.shape == (8, 3, 4, 5) and y.tolist() == (np.arange(8) % 3).tolist()
    np.testing.assert_allclose(x.numpy(), raw / 255.0, atol=1e-7)
    # a float image whose pixels span only [0.2, 0.3] stays as it is (a tabular file would be min-max scaled)
    flat = (0.2 + 0.1 * RNG.random((12, 1, 3, 3))).astype(np.float32)
    np.savez(tmp_path / "f.npz", x=flat, y=np.arange(12) % 2)
    x, _y = data.load(str(tmp_path / "f.npz"), "train", device="cpu")
    assert x.shape[1:] == (1, 3, 3) and float(x.min()) >= 0.2 and float(x.max()) <= 0.3
    info = data.info(str(tmp_path / "f.npz"))
    assert (info.input_shape, info.num_classes) == ((1, 3, 3), 2)
    assert data.scaling_of(str(tmp_path / "f.npz")) is None


def test_image_npz_outside_unit_range_refused(tmp_path):
    np.savez(tmp_path / "bad.npz", x=np.full((4, 1, 2, 2), 2.0), y=np.zeros(4))
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\] \(images are not rescaled\)"):
        data.load(str(tmp_path / "bad.npz"), "test")


# --- plain .pt with --arch -------------------------------------------------------------------------------


def _autoattack_checkpoint() -> Path:
    spec = importlib.util.find_spec("pyautoattack")
    if spec is None or spec.origin is None:
        pytest.skip("pyautoattack is not installed")
    return Path(spec.origin).parent / "examples" / "model_test.pt"


def _cifar_npz(tmp_path: Path, checkpoint: Path, n: int = 4) -> Path:
    """Random CIFAR-shaped images labelled with the model's own predictions (so clean accuracy is 1)."""
    x = torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    model = nets.load(checkpoint, device="cpu", arch="resnet18")
    with torch.no_grad():
        y = model(x).argmax(1)
    path = tmp_path / "cifar-random.npz"
    np.savez(path, x_test=x.numpy(), y_test=y.numpy())
    return path


def test_autoattack_resnet18_pt_with_arch_from_the_cli(tmp_path):
    checkpoint = _autoattack_checkpoint()
    npz = _cifar_npz(tmp_path, checkpoint)
    result = invoke("attack", "--model", checkpoint, "--arch", "resnet18", "--arch-option",
                    "num_classes=10", "--data", npz, "--n", 4, "--attack", "pgd", "--option", "steps=2",
                    "--eps", "8/255")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "clean accuracy" in result.output and "100.00 %" in result.output
    one_line_error(invoke("attack", "--model", checkpoint, "--data", npz, "--n", 2), "--arch", "sidecar")
    one_line_error(invoke("attack", "--model", checkpoint, "--arch", "resnet18", "--arch-option", "depth=3",
                          "--data", npz, "--n", 2), "no option 'depth'")  # fmt: skip


def test_mean_std_wrap_the_model_in_normalize(tmp_path):
    model = nets.build("mlp", seed=0, input_shape=[1, 8, 8], widths=[16])
    path = tmp_path / "m.pt"
    torch.save(model.state_dict(), path)
    mean, std = [0.5], [0.25]
    inputs = load_inputs(path, "digits", "test", None, 5, "cpu", arch="mlp", arch_options={"widths": [16]},
                         normalization=(mean, std))  # fmt: skip
    assert isinstance(inputs.model[0], nets.Normalize)
    torch.testing.assert_close(inputs.model(inputs.x), model.eval()((inputs.x - 0.5) / 0.25))
    one_line_error(invoke("certify", "--model", path, "--arch", "mlp", "--mean", "0.5", "--n", 2), "--std")


def test_root_and_its_old_spelling_in_evaluate(tmp_path, monkeypatch):
    """`--root` works in every subcommand, `--data-root` still works in evaluate; fashion-mnist is named
    in results.json and report.md."""
    monkeypatch.chdir(tmp_path)
    write_fashion(tmp_path / "fm")
    model = nets.build("mlp", seed=0, input_shape=[1, 28, 28], widths=[8])
    nets.save(model, tmp_path / "fm.safetensors")
    for flag, out in (("--root", "a"), ("--data-root", "b")):
        result = invoke("evaluate", "--model", tmp_path / "fm.safetensors", "--data", "fashion-mnist",
                        flag, tmp_path / "fm", "--out", out, *TINY)  # fmt: skip
        assert result.exit_code == 0, result.output
        results = json.loads((tmp_path / out / "results.json").read_text())
        assert results["data"]["name"] == "fashion-mnist"
        assert results["model"]["dataset"] == "fashion-mnist"
        assert "on `fashion-mnist`" in (tmp_path / out / "report.md").read_text()
    for command in ("attack", "certify"):
        result = invoke(command, "--model", tmp_path / "fm.safetensors", "--data", "fashion-mnist",
                        "--root", tmp_path / "fm", "--n", 3, "--eps", "0.01")  # fmt: skip
        assert result.exit_code == 0, result.output


@pytest.mark.parametrize("command", ["train", "attack", "certify", "evaluate", "report"])
def test_every_subcommand_has_short_help(command):
    result = invoke(command, "-h")
    assert result.exit_code == 0 and "Usage" in result.output
    if command != "report":
        assert "--root" in result.output and "--quiet" in result.output
