"""A data file is evaluated whole: no hidden train/test split of x, y (only a file's own x_train/x_test
split is used), small files work, and the number of classes is the model's, never the data's."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _cli import invoke, one_line_error

from wdrobust import nets
from wdrobust.data.base import stratified_split
from wdrobust.nets.registry import class_axes
from wdrobust.primal.distribution import Distribution

PGD = ("--attack", "pgd", "--option", "steps=2", "-q")


@pytest.fixture(autouse=True)
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def plain_mlp(tmp_path_factory):
    """A 10-output digits MLP saved as a plain .pt state_dict (no sidecar: give --arch mlp, widths=16)."""
    path = tmp_path_factory.mktemp("plain") / "m.pt"
    torch.save(nets.build("mlp", seed=0, input_shape=[1, 8, 8], widths=[16]).state_dict(), path)
    return path


PLAIN = ("--arch", "mlp", "--arch-option", "widths=16")


def saved_clean(path) -> torch.Tensor:
    """The clean samples an attack's saved distribution came from: the evaluated x, in order."""
    return Distribution.load(path, device="cpu").clean


@pytest.mark.parametrize("n", [2, 20, 200])
def test_attack_evaluates_every_image_of_a_file(digits_mlp_path, digits_test, tmp_path, n):
    x, y = digits_test
    np.savez(tmp_path / "imgs.npz", x=x[:n].numpy(), y=y[:n].numpy())
    save = tmp_path / "dist.safetensors"
    result = invoke(
        "attack", "--model", digits_mlp_path, "--data", tmp_path / "imgs.npz", "--save", save, *PGD
    )
    assert result.exit_code == 0, result.output
    assert f"pgd on {n} samples" in result.output
    torch.testing.assert_close(saved_clean(save), x[:n])  # all of them, in file order


def test_n_still_selects_the_first_samples_of_the_file(digits_mlp_path, digits_test, tmp_path):
    x, y = digits_test
    np.savez(tmp_path / "imgs.npz", x=x[:20].numpy(), y=y[:20].numpy())
    save = tmp_path / "dist.safetensors"
    result = invoke("attack", "--model", digits_mlp_path, "--data", tmp_path / "imgs.npz", "--n", 5,
                    "--save", save, *PGD)  # fmt: skip
    assert result.exit_code == 0, result.output
    torch.testing.assert_close(saved_clean(save), x[:5])


def test_evaluate_uses_the_whole_file(digits_mlp_path, digits_test, tmp_path):
    x, y = digits_test
    np.savez(tmp_path / "imgs.npz", x=x[:20].numpy(), y=y[:20].numpy())
    result = invoke("evaluate", "--model", digits_mlp_path, "--data", tmp_path / "imgs.npz", "--eps", "0.05",
                    "--p", "inf", "--attacks", "pgd", "--certificates", "global", "--out", "run",
                    "-q")  # fmt: skip
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["n"] == 20 and results["data"]["n_available"] == 20


def test_a_files_own_test_split_is_used(digits_mlp_path, digits_test, tmp_path):
    x, y = digits_test
    np.savez(tmp_path / "split.npz", x_train=x[:30].numpy(), y_train=y[:30].numpy(),
             x_test=x[30:37].numpy(), y_test=y[30:37].numpy())  # fmt: skip
    save = tmp_path / "dist.safetensors"
    result = invoke(
        "attack", "--model", digits_mlp_path, "--data", tmp_path / "split.npz", "--save", save, *PGD
    )
    assert result.exit_code == 0, result.output
    assert "pgd on 7 samples" in result.output
    torch.testing.assert_close(saved_clean(save), x[30:37])


@pytest.mark.parametrize("labels", [[4], [3, 3, 3, 3, 3]], ids=["one-sample", "one-class"])
def test_tiny_files_attack_and_certify(digits_mlp_path, digits_test, tmp_path, labels):
    x = digits_test[0][: len(labels)]
    np.savez(tmp_path / "tiny.npz", x=x.numpy(), y=np.array(labels))
    data = ("--model", digits_mlp_path, "--data", tmp_path / "tiny.npz")
    attacked = invoke("attack", *data, *PGD)
    assert attacked.exit_code == 0, attacked.output
    assert f"pgd on {len(labels)} samples" in attacked.output
    certified = invoke("certify", *data, "--eps", "0.05", "-q")
    assert certified.exit_code == 0, certified.output
    assert f"on {len(labels)} samples" in certified.output and "global" in certified.output


def test_classes_come_from_the_checkpoint_not_the_labels(plain_mlp, digits_test, tmp_path):
    x, y = digits_test
    keep = y < 8  # a subset without classes 8 and 9: the data's largest label + 1 is 8, the model has 10
    np.savez(tmp_path / "eight.npz", x=x[keep][:40].numpy(), y=y[keep][:40].numpy())
    result = invoke("attack", "--model", plain_mlp, *PLAIN, "--data", tmp_path / "eight.npz", *PGD)
    assert result.exit_code == 0, result.output
    assert "pgd on 40 samples" in result.output
    np.savez(tmp_path / "twelve.npz", x=x[:13].numpy(), y=np.arange(13))
    result = invoke("attack", "--model", plain_mlp, *PLAIN, "--data", tmp_path / "twelve.npz", *PGD)
    one_line_error(
        result, "the model has 10 outputs, the labels go up to 12", "the data hold labels 10, 11, 12"
    )


def test_train_on_a_file_without_split_holds_out_validation_and_says_so(digits_test, tmp_path):
    x, y = digits_test
    np.savez(tmp_path / "imgs.npz", x=x[:200].numpy(), y=y[:200].numpy())
    out = tmp_path / "m.safetensors"
    result = invoke(
        "train", "--data", tmp_path / "imgs.npz", "--widths", "8", "--epochs", "1", "--out", out, "-q"
    )
    assert result.exit_code == 0, result.output
    assert "imgs.npz has no test split (x_test, y_test): 20 of its 200 samples are held out" in result.output
    assert nets.load_metadata(out)["metadata"]["val_accuracy"] == pytest.approx(
        nets.load_metadata(out)["metadata"]["test_accuracy"]
    )  # the held-out validation part is where the test accuracy is measured


def test_a_plain_state_dict_gets_its_class_count_from_its_output_layer(tmp_path):
    model = nets.build("mlp", seed=0, input_shape=[1, 8, 8], widths=[16], num_classes=7)
    torch.save(model.state_dict(), tmp_path / "seven.pt")
    loaded = nets.load(tmp_path / "seven.pt", arch="mlp", input_shape=[1, 8, 8], widths=[16])
    x = torch.rand(3, 1, 8, 8)
    torch.testing.assert_close(loaded(x), model.eval()(x))
    assert class_axes("cnn", input_shape=[1, 8, 8]) == {"11.weight": 0, "11.bias": 0}


def test_small_files_split_for_validation_without_stratifying(tmp_path):
    y = np.arange(20) % 10  # two samples per class: a 10 % validation part cannot hold every class
    train, held = stratified_split(y, 0.1, seed=0)
    assert len(held) == 2 and sorted([*train, *held]) == list(range(20))
    y = np.repeat(np.arange(4), 10)
    _, held = stratified_split(y, 0.25, seed=0)  # stratified when it can be: 2 or 3 of each class
    assert sorted(np.bincount(y[held], minlength=4).tolist()) == [2, 2, 3, 3]
