"""Classic mistakes caught before any work starts: shapes that do not fit (both shapes named), a model
that outputs probabilities (a warning), a radius beyond the input box (``--eps 8`` meant as 8/255) and
inputs outside [0, 1] (a hint at --mean/--std)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from _cli import invoke, one_line_error
from torch import nn

from wdrobust import api, nets
from wdrobust.pipeline.inputs import checked_inputs
from wdrobust.threat import ThreatModel

PGD = ("--attack", "pgd", "--option", "steps=2", "-q")


@pytest.fixture(autouse=True)
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


# --- shapes ---------------------------------------------------------------------------------------------


def test_model_and_data_shapes_are_both_named(digits_mlp_path, tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (4, 1, 28, 28), dtype=np.uint8)
    np.savez(tmp_path / "mnist.npz", x=images, y=np.arange(4))
    result = invoke("attack", "--model", digits_mlp_path, "--data", tmp_path / "mnist.npz", *PGD)
    one_line_error(result, "the model expects inputs of shape (1, 8, 8), the data's are (1, 28, 28)")


def test_state_dict_of_another_input_shape_names_the_layer_and_both_shapes(tmp_path):
    model = nets.build("mlp", seed=0, input_shape=[1, 28, 28], widths=[100])
    torch.save(model.state_dict(), tmp_path / "mnist-mlp.pt")
    result = invoke("attack", "--model", tmp_path / "mnist-mlp.pt", "--arch", "mlp", "--arch-option",
                    "widths=100", "--data", "digits", "--n", 4, *PGD)  # fmt: skip
    one_line_error(
        result, "layer 1.weight: checkpoint (100, 784), architecture (100, 64)", "input_shape=[1, 8, 8]",
        "--arch-option",
    )  # fmt: skip
    shaped = ("--arch", "mlp", "--arch-option", "widths=100", "--arch-option", "input_shape=1,28,28")
    fitted = invoke("attack", "--model", tmp_path / "mnist-mlp.pt", *shaped, "--n", 4, *PGD)  # digits
    one_line_error(fitted, "the model expects inputs of shape (1, 28, 28), the data's are (1, 8, 8)")


# --- probabilities --------------------------------------------------------------------------------------


def uniform_output_checkpoint(path):
    """A plain .pt MLP whose last layer is zero with bias 1/10: every output row is (0.1, ..., 0.1)."""
    model = nets.build("mlp", seed=0, input_shape=[1, 8, 8], widths=[8])
    state = model.state_dict()
    state["3.weight"].zero_()
    state["3.bias"].fill_(0.1)
    torch.save(state, path)
    return path


def test_probability_outputs_warn_in_one_line_and_the_command_runs(tmp_path):
    path = uniform_output_checkpoint(tmp_path / "p.pt")
    result = invoke("attack", "--model", path, "--arch", "mlp", "--arch-option", "widths=8", "--n", 4, *PGD)
    assert result.exit_code == 0, result.output
    warned = [line for line in result.output.splitlines() if line.startswith("warning: ")]
    assert len(warned) == 1 and "look like probabilities" in warned[0] and "final softmax" in warned[0]


def test_probability_outputs_warn_in_the_library_logits_do_not(digits_mlp, digits_test):
    x, y = digits_test[0][:20], digits_test[1][:20]
    with pytest.warns(UserWarning, match="look like probabilities.*pass the logits"):
        checked_inputs(nn.Sequential(digits_mlp, nn.Softmax(dim=1)), x, y, None, 20, "cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        checked_inputs(digits_mlp, x, y, None, 20, "cpu")
        checked_inputs(nn.Sequential(digits_mlp, nn.ReLU()), x, y, None, 20, "cpu")  # >= 0, sums vary


# --- the radius -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["attack", "certify", "evaluate"])
def test_eps_beyond_the_box_is_refused_with_the_hint(command, digits_mlp_path, tmp_path):
    extra = ["--out", "run", "--attacks", "pgd", "--certificates", "global"] if command == "evaluate" else []
    result = invoke(command, "--model", digits_mlp_path, "--n", 4, "--eps", "8", *extra, "-q")
    one_line_error(result, "eps = 8 exceeds 1, the linf diameter", "did you mean 8/255?")
    assert not (tmp_path / "run").exists()
    l2 = invoke(command, "--model", digits_mlp_path, "--n", 4, "--norm", "l2", "--eps", "8.5", *extra, "-q")
    one_line_error(l2, "exceeds 8, the l2 diameter of the input box [0, 1]^64")


def test_eps_up_to_the_diameter_is_accepted(digits_mlp_path):
    for norm, eps in (("linf", "1"), ("l2", "8")):
        result = invoke("attack", "--model", digits_mlp_path, "--n", 2, "--norm", norm, "--eps", eps, *PGD)
        assert result.exit_code == 0, result.output
    ThreatModel("l1", 64.0).check_radius(64)
    with pytest.raises(ValueError, match="did you mean 65/255"):
        ThreatModel("l1", 65.0).check_radius(64)


def test_python_evaluation_refuses_a_radius_beyond_the_box(digits_mlp, digits_test):
    x, y = digits_test[0][:4], digits_test[1][:4]
    with pytest.raises(ValueError, match="did you mean 2/255"):
        api.evaluate(digits_mlp, x, y, eps=2.0, p="inf", attacks="pgd", certificates="global")


# --- inputs outside [0, 1] ------------------------------------------------------------------------------


def test_inputs_outside_the_unit_box_point_at_mean_std(digits_mlp_path, digits_mlp, digits_test, tmp_path):
    normalised = ((digits_test[0][:4] - 0.5) / 0.25).numpy()
    np.savez(tmp_path / "norm.npz", x=normalised, y=digits_test[1][:4].numpy())
    result = invoke("attack", "--model", digits_mlp_path, "--data", tmp_path / "norm.npz", *PGD)
    one_line_error(result, "must lie in [0, 1]", "--mean/--std")
    with pytest.raises(ValueError, match=r"inputs must lie in \[0, 1\].*--mean/--std"):
        checked_inputs(digits_mlp, torch.from_numpy(normalised), digits_test[1][:4], None, 4, "cpu")
