"""Tabular data seen by a trained model: the file's own labels, the training file's feature scaling (from
the model's sidecar), and one-line refusals of files that cannot be right."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _cli import invoke, one_line_error

from wdrobust import nets
from wdrobust.pipeline.inputs import load_inputs

FEATURES = 4


@pytest.fixture(autouse=True)
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


def blobs(n_per_class: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three well separated classes 0, 1, 2 in raw feature units (centres 10 c, spread 3)."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), n_per_class)
    x = 10.0 * y[:, None] + rng.normal(0, 3, (len(y), FEATURES))
    return x, y


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 3-class MLP trained by `wdrobust train` on full.npz (given splits); returns (folder, model path)."""
    folder = tmp_path_factory.mktemp("tabular")
    x_train, y_train = blobs(60, seed=0)
    x_test, y_test = blobs(30, seed=1)
    np.savez(folder / "full.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    model = folder / "m.safetensors"
    args = (
        "train",
        "--data",
        folder / "full.npz",
        "--widths",
        "16",
        "--epochs",
        "20",
        "--lr",
        "0.01",
        "--schedule",  # the recipe this test was written with: 180 samples, 60 steps at a constant rate
        "constant",
        "--val-fraction",
        "0",
        "--out",
        model,
        "-q",
    )
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return folder, model


def test_sidecar_keeps_the_training_files_scaling_images_have_none(trained, digits_mlp_path):
    folder, model = trained
    scaling = nets.load_metadata(model)["input_scaling"]
    x_train = np.load(folder / "full.npz")["x_train"]
    np.testing.assert_allclose(scaling["lo"], x_train.min(axis=0))
    np.testing.assert_allclose(scaling["hi"], x_train.max(axis=0))
    assert "input_scaling" not in nets.load_metadata(digits_mlp_path)


def test_a_file_with_some_of_the_classes_keeps_labels_and_scaling(trained, tmp_path):
    folder, model = trained
    full = dict(np.load(folder / "full.npz"))
    keep_train, keep_test = full["y_train"] > 0, full["y_test"] > 0  # classes 1 and 2 only
    subset = tmp_path / "subset.npz"
    np.savez(subset, x_train=full["x_train"][keep_train], y_train=full["y_train"][keep_train],
             x_test=full["x_test"][keep_test], y_test=full["y_test"][keep_test])  # fmt: skip
    whole = load_inputs(model, str(folder / "full.npz"), "test", None, 1000, "cpu")
    part = load_inputs(model, str(subset), "test", None, 1000, "cpu")
    assert part.y.tolist() == full["y_test"][keep_test].tolist()  # 1 and 2, not re-encoded to 0 and 1
    torch.testing.assert_close(part.x, whole.x[torch.from_numpy(keep_test)])  # the model's scaling
    with torch.no_grad():
        expected = (part.model(part.x).argmax(1) == part.y).double().mean().item()
    assert expected > 0.9  # the model is good on these samples
    result = invoke("evaluate", "--model", model, "--data", subset, "--n", 40, "--batch-size", 40,
                    "--eps", "0.1", "--p", "inf", "--attacks", "wda++", "--certificates", "global",
                    "--out", tmp_path / "run", "--quiet")  # fmt: skip
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["clean"]["accuracy"] == pytest.approx(expected)


def test_labels_beyond_the_models_classes_are_quoted(trained, tmp_path):
    _, model = trained
    x, y = blobs(20)
    y[y == 2] = 7
    np.savez(tmp_path / "seven.npz", x=x, y=y)
    result = invoke("attack", "--model", model, "--data", tmp_path / "seven.npz")  # all 60 samples
    one_line_error(result, "the model has 3 outputs, the labels go up to 7", "the data hold labels 7")


@pytest.mark.parametrize(
    ("y", "message"),
    [
        (np.arange(79) % 3, "x has 80 rows but y has 79"),
        (np.zeros((80, 2), dtype=int), "y must be a 1-D array of labels, got shape (80, 2)"),
    ],
)
def test_malformed_npz_is_refused_in_one_line(trained, tmp_path, y, message):
    _, model = trained
    np.savez(tmp_path / "bad.npz", x=np.random.default_rng(0).random((80, FEATURES)), y=y)
    result = invoke("evaluate", "--model", model, "--data", tmp_path / "bad.npz", "--out", tmp_path / "run")
    one_line_error(result, message)
    assert not (tmp_path / "run").exists()


def test_single_class_training_file_is_refused(tmp_path):
    x, _ = blobs(20)
    np.savez(tmp_path / "one.npz", x=x, y=np.full(len(x), 2))
    result = invoke("train", "--data", tmp_path / "one.npz", "--out", tmp_path / "m.safetensors", "-q")
    one_line_error(result, "single class (2)")
    assert not list(tmp_path.glob("m.*"))
