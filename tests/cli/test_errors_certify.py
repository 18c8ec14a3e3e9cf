"""Crashes inside certificates that reached the command line as tracebacks (IndexError, "majorant knots
must be ... strictly increasing", KeyError), each with the input that triggered it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from wdrobust import nets
from wdrobust.certify import CERTIFICATES
from wdrobust.certify.base import KNOT_DTYPE, check_radii, default_radii, distinct_radii
from wdrobust.certify.milp import MILPCertificate
from wdrobust.cli import app
from wdrobust.pipeline import build_config
from wdrobust.pipeline.jobs import certificate_radii
from wdrobust.threat import ThreatModel

runner = CliRunner()


def strictly_increasing_knots(radii: np.ndarray) -> bool:
    """The radii stay strictly increasing once they are knots (KNOT_DTYPE)."""
    return bool((np.diff(radii.astype(KNOT_DTYPE)) > 0).all())


def test_milp_with_eps_beyond_the_diameter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    net = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 3)).eval()
    threat = ThreatModel("linf", 2.0, 2)
    around = MILPCertificate.options_for("linf", 2.0, 2)
    cert = MILPCertificate(net, "linf", losses=("ce", "zero_one"), device="cpu", **around)
    assert list(cert.shell_radii(2)) == [1.0]  # only the diameter shell is left
    x = torch.rand(3, 2, generator=torch.Generator().manual_seed(0))
    result = cert.run(x, net(x).argmax(dim=1))
    assert result.majorants["ce"].knots.tolist() == [[1.0]] * 3
    assert np.isfinite(float(result.upper_bound("ce", threat).risk))
    monkeypatch.chdir(tmp_path)
    model = tmp_path / "m.safetensors"
    nets.save(nets.build("mlp", seed=0, input_shape=[1, 8, 8], num_classes=10, widths=[4]), model)
    args = ["certify", "--model", str(model), "--method", "milp", "--n", "2", "--device", "cpu"]
    done = runner.invoke(app, [*args, "--eps", "1"])  # the diameter itself: the whole box
    assert done.exit_code == 0, done.output
    assert "milp" in done.output and "sound" in done.output
    # beyond it the CLI takes the radius for a slip of scale (the library above still bounds it)
    refused = runner.invoke(app, [*args, "--eps", "5"])
    assert refused.exit_code == 2 and refused.output.strip() == (
        "error: eps = 5 exceeds 1, the linf diameter of the input box [0, 1]^64: did you mean 5/255?"
    )


def test_radii_are_distinct_as_float32_knots() -> None:
    r = distinct_radii([0.3, 0.1, 0.1 + 1e-12, 1.0 - 1e-10, 1.0])
    assert r.tolist() == [0.1 + 1e-12, 0.3, 1.0]  # sorted; the largest of each equal run, the last kept
    assert distinct_radii([]).size == 0
    assert check_radii([0.1, 0.1 + 1e-10, 0.5], "linf", 64).tolist() == [0.1 + 1e-10, 0.5, 1.0]
    for eps in (1e-7, 0.01, 0.5, 0.99999999, 3.0):
        assert strictly_increasing_knots(default_radii("linf", eps, 64))


def test_evaluate_radii_of_eps_that_collide_in_float32(
    digits_mlp_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    eps = "0.01,0.02,0.05,0.1"
    radii = certificate_radii(build_config(None, eps=eps), 64)
    assert radii[-1] == 1.0 and strictly_increasing_knots(radii)
    monkeypatch.chdir(tmp_path)
    args = ["evaluate", "--n", "4", "--eps", eps, "--p", "2", "--attacks", "pgd"]
    done = runner.invoke(app, [*args, "--certificates", "local,cell", "--out", "run", "--quiet"])
    assert done.exit_code == 0, done.output
    assert (tmp_path / "run" / "results.json").is_file()


class Scaled(nn.Module):
    """body(x * scale) with scale a registered buffer: the traced graph reads it through get_attr."""

    def __init__(self, body: nn.Module, scale: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("scale", scale)
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x * self.scale)


class Flattened(nn.Module):
    """body(x.view(x.size(0), -1)): the flattening reads the input's size (a shape query) in the prefix."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.view(x.size(0), -1))


def test_models_that_read_their_input_size() -> None:
    torch.manual_seed(0)
    body = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3)).eval()
    x = torch.rand(4, 1, 2, 2, generator=torch.Generator().manual_seed(1))
    y = body(x.flatten(1)).argmax(dim=1)
    around = CERTIFICATES["local"].options_for("l2", 0.05, 4)
    got = CERTIFICATES["local"](Flattened(body), "l2", device="cpu", **around).run(x, y)
    want = CERTIFICATES["local"](body, "l2", device="cpu", **around).run(x.flatten(1), y)
    np.testing.assert_allclose(got.majorants["ce"].slopes, want.majorants["ce"].slopes, rtol=1e-5)


@pytest.mark.parametrize("method", ["local", "radius", "cell"])
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_models_with_buffers_in_forward(method: str, norm: str) -> None:
    """A buffer in forward gives the bounds of the same network with the buffer folded into its weights."""
    torch.manual_seed(0)
    body = nn.Sequential(nn.Linear(2, 6), nn.ReLU(), nn.Linear(6, 3)).eval()
    scale = torch.tensor([0.5, 2.0])
    folded = nn.Sequential(nn.Linear(2, 6), nn.ReLU(), nn.Linear(6, 3)).eval()
    with torch.no_grad():
        folded[0].weight.copy_(body[0].weight * scale)
        folded[0].bias.copy_(body[0].bias)
        folded[2].load_state_dict(body[2].state_dict())
    x = torch.rand(4, 2, generator=torch.Generator().manual_seed(1))
    y = folded(x).argmax(dim=1)
    around = CERTIFICATES[method].options_for(norm, 0.05, 2)
    got, want = (
        CERTIFICATES[method](net, norm, losses=("ce", "zero_one"), device="cpu", **around).run(x, y)
        for net in (Scaled(body, scale).eval(), folded)
    )
    np.testing.assert_allclose(got.majorants["ce"].slopes, want.majorants["ce"].slopes, rtol=1e-5)
    np.testing.assert_allclose(got.certified_radius, want.certified_radius, rtol=1e-5)
    assert got.sound
