"""The Python API: ``wdrobust.evaluate(model, x, y, ...)`` on a user-defined nn.Module and tensors, with
and without a run folder, and its agreement with ``wdrobust evaluate`` on the same model and samples."""

from __future__ import annotations

import json

import pytest
import torch
from _cli import invoke
from torch import nn

import wdrobust
from wdrobust import api, nets
from wdrobust.pipeline.document import Results

ARGS = {"eps": [0.05], "p": [1, "inf"], "attacks": ["pgd", "wda++"], "certificates": ["crown", "radius"]}


class TwoLayer(nn.Module):
    """A user's module: not built by wdrobust.nets, no sidecar, its own forward."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(64, 16)
        self.out = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.hidden(x.flatten(1))))


@pytest.fixture
def user_model(digits_test):
    """A TwoLayer trained for a few epochs on the digits test split's first 300 samples (well under 1 s)."""
    from wdrobust.train import train

    torch.manual_seed(0)
    x, y = digits_test
    return train(TwoLayer(), x[:300], y[:300], epochs=5).model


def test_user_module_without_out(user_model, digits_test, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    x, y = digits_test
    results = wdrobust.evaluate(user_model, x[:30], y[:30], norm="linf", **ARGS)
    assert isinstance(results, Results) and results.run_dir is None
    assert not list(tmp_path.iterdir())  # nothing written where the user is
    assert results.model.arch == "TwoLayer" and results.model.path is None
    assert results.data.name == "tensors" and results.n == 30
    for p in (1, "inf"):
        band = results.bounds("ce", 0.05, p)
        assert band.clean <= band.lower_bound <= band.upper_bound  # attained <= sound
        acc = results.bounds("zero_one", 0.05, p).accuracy
        assert acc.lower <= acc.upper <= acc.clean
    with torch.no_grad():
        assert results.clean_accuracy == pytest.approx(
            (user_model(x[:30]).argmax(1) == y[:30]).float().mean()
        )
    with pytest.raises(KeyError, match=r"no 'ce' bounds at eps=0\.1"):
        results.bounds("ce", 0.1, 1)


def test_user_module_with_out_is_the_resumable_run_folder(user_model, digits_test, tmp_path):
    x, y = digits_test
    out = tmp_path / "run"
    first = api.evaluate(user_model, x[:20], y[:20], out=out, label="two-layer", **ARGS)
    on_disk = json.loads((out / "results.json").read_text())
    assert first.to_dict() == on_disk and first.run_dir == out
    assert on_disk["model"]["name"] == "two-layer"
    assert (out / "report.md").is_file() and list((out / "plots").glob("*.png"))
    again = api.evaluate(user_model, x[:20], y[:20], out=out, label="two-layer", **ARGS)
    assert again.run == first.run  # resumed: every unit is the first session's, none was redone
    assert again.threat_models == first.threat_models
    changed = TwoLayer()  # other weights: the stored units are not this model's
    with pytest.raises(ValueError, match="model checkpoint changed"):
        api.evaluate(changed, x[:20], y[:20], out=out, label="two-layer", **ARGS)


def test_python_and_cli_compute_the_same_bounds(digits_mlp_path, digits_test, tmp_path, monkeypatch):
    """One pipeline: the CLI on the cached default model and the API on the same module and samples."""
    monkeypatch.chdir(tmp_path)
    flags = ["--n", "12", "--batch-size", "6", "--eps", "0.05", "--p", "1,inf", "--attacks", "pgd,wda++",
             "--certificates", "crown,radius", "--quiet"]  # fmt: skip
    result = invoke("evaluate", "--model", digits_mlp_path, "--out", "cli", *flags)
    assert result.exit_code == 0, result.output
    cli = json.loads((tmp_path / "cli" / "results.json").read_text())
    x, y = digits_test
    model = nets.load(digits_mlp_path, device="cpu")
    py = api.evaluate(model, x[:12], y[:12], batch_size=6, data="digits", **ARGS)
    assert _without_seconds(py.to_dict()["threat_models"]) == _without_seconds(cli["threat_models"])


def _without_seconds(value):
    """A results document with its timings left out (every bound, budget and pass count kept)."""
    if isinstance(value, dict):
        return {k: _without_seconds(v) for k, v in value.items() if k != "seconds"}
    if isinstance(value, list):
        return [_without_seconds(v) for v in value]
    return value


def test_bad_tensors_are_one_line_value_errors(user_model):
    with pytest.raises(ValueError, match=r"inputs must lie in \[0, 1\]"):
        api.evaluate(user_model, torch.full((3, 1, 8, 8), 2.0), torch.zeros(3), **ARGS)
    with pytest.raises(ValueError, match="x must be"):
        api.evaluate(user_model, torch.rand(3, 1, 8, 8), torch.zeros(4), **ARGS)
