"""The ``bab`` certificate: radii bracket the MILP exact flip distances; interface like the others."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from _certify_brute import tiny_net
from typer.testing import CliRunner

from wdrobust.certify import CERTIFICATES
from wdrobust.certify.exact import flip_distances
from wdrobust.cli import app
from wdrobust.threat import ThreatModel


@pytest.mark.parametrize("norm", ["linf", "l1"])
def test_bab_radii_bracket_the_exact_flip_distances(norm: str) -> None:
    net = tiny_net(0, 2, "relu").float()
    x = torch.rand(3, 2, generator=torch.Generator().manual_seed(0))
    y = net(x).argmax(1)
    exact = flip_distances(net, x, y, norm)
    assert exact.proven.all()
    cert = CERTIFICATES["bab"](net, norm, losses=("margin", "zero_one"), budget=20, tol=1e-2)
    res = cert.run(x, y)
    b = cert.brackets
    assert (res.certified_radius == b.lower).all()
    assert (b.lower <= exact.lower + 1e-7).all()  # sound: never above the true flip distance
    finished = b.proven & np.isfinite(exact.upper)
    assert finished.any()
    assert (b.upper[finished] >= exact.upper[finished] - 1e-6).all()  # an attained flip is no closer
    assert (b.upper[finished] - b.lower[finished] <= 1e-2 * b.upper[finished] + 1e-12).all()
    assert res.sound and "bab:" in res.note


def test_bab_certificate_interface() -> None:
    net = tiny_net(1, 2, "relu").float()
    x = torch.rand(4, 2, generator=torch.Generator().manual_seed(1))
    y = net(x).argmax(1)
    y[0] = (y[0] + 1) % 3  # misclassified: radius 0
    cert = CERTIFICATES["bab"](net, "linf", losses=("ce", "zero_one"), budget=5, tol=0.05)
    res = cert.run(x, y, upper=torch.full((4,), 0.9))
    assert res.certified_radius[0] == 0
    assert (res.certified_radius <= 0.9).all()
    crown = CERTIFICATES["crown"](net, "linf", losses=("ce", "zero_one")).run(x, y)
    assert (res.certified_radius >= crown.certified_radius - 1e-12).all()  # warm-started from crown's
    assert res.upper_bound("zero_one", ThreatModel("linf", 0.1, 2)).risk <= 1
    with pytest.raises(ValueError, match="budget"):
        CERTIFICATES["bab"](net, "linf", budget=0)
    with pytest.raises(ValueError, match="mode"):
        CERTIFICATES["bab"](net, "linf", bab={"mode": "x"})


def test_bab_through_the_cli(digits_mlp_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`wdrobust certify --method bab` and `wdrobust evaluate --certificates bab,crown` on the digits MLP
    (tiny n, 1 s budget per sample): bab is a sound row and joins `combined` for zero_one."""
    runner = CliRunner()
    args = ["certify", "--model", str(digits_mlp_path), "--method", "bab", "--loss", "zero_one"]
    res = runner.invoke(app, [*args, "--n", "2", "--time-limit", "0.2", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert "bab" in res.output and "sound" in res.output
    monkeypatch.setenv("WDROBUST_CACHE", str(digits_mlp_path.parent))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.toml").write_text("[certificate_options.bab]\nbudget = 1.0\ntime_limit = 0.2\n")
    flags = ["--config", "c.toml", "--n", "3", "--batch-size", "3", "--eps", "0.05", "--p", "inf"]
    methods = ["--attacks", "wda++", "--certificates", "bab,crown", "--out", "runs/b", "-q"]
    res = runner.invoke(app, ["evaluate", *flags, *methods])
    assert res.exit_code == 0, res.output
    results = json.loads((tmp_path / "runs/b/results.json").read_text())
    text = json.dumps(results)
    assert '"bab"' in text and "combined" in text
