"""`empirical` reads the points the attacks visited in the same run: in `evaluate` (from the attack units
of the same batch, stored with their points) and in `wdrobust certify` (from --attack)."""

from __future__ import annotations

import numpy as np
import torch
from _cli import invoke

from wdrobust import api
from wdrobust.certify import CERTIFICATES
from wdrobust.pipeline.store import STORE_NAME, Store


def test_evaluate_passes_the_attacks_points_to_empirical(digits_mlp, digits_test, tmp_path):
    x, y = digits_test
    x, y = x[:8], y[:8]
    out = tmp_path / "run"
    api.evaluate(digits_mlp, x, y, eps=[0.05], p=[2], attacks=["pgd", "wda"], certificates=["empirical"],
                 batch_size=8, out=out)  # fmt: skip
    with Store(out / STORE_NAME) as store:
        jobs = store.jobs()
        attack_points = [store.arrays(j, 0)["points"] for j, s in jobs.items() if s["kind"] == "attack"]
        stored = store.arrays("certificate/empirical/linf", 0)["lipschitz"]
    assert len(attack_points) == 2 and all(
        p.shape[0] == 8 and p.shape[2:] == (1, 8, 8) for p in attack_points
    )
    width = max(p.shape[1] for p in attack_points)
    visited = np.concatenate(
        [np.concatenate([p, np.full((8, width - p.shape[1], 1, 8, 8), np.nan)], 1) for p in attack_points], 1
    )
    cert = CERTIFICATES["empirical"](digits_mlp, "linf", losses=("ce", "margin", "zero_one"))
    direct = cert.run(x, y, visited=torch.from_numpy(visited).float())
    alone = cert.run(x, y)
    np.testing.assert_allclose(stored, direct.lipschitz, rtol=1e-6)
    assert (stored >= alone.lipschitz - 1e-6).all() and (stored > alone.lipschitz + 1e-6).any()


def test_certify_cli_runs_empirical_on_the_attacks_points(digits_mlp_path):
    common = ["certify", "--model", digits_mlp_path, "--n", 6, "--eps", "0.05", "--p", "2", "--quiet"]
    result = invoke(*common, "--method", "empirical,global", "--attack", "pgd")
    assert result.exit_code == 0, result.output
    assert "empirical" in result.output and "estimate" in result.output
