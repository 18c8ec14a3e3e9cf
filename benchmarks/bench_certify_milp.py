"""milp certificate cost on a digits MLP 64-32-32-10 (ReLU), linf threat, eps = 0.02 and 0.05.

For the first 3 test samples, all 9 classes j != y (one program each, time limit 60 s per program), on the
eps shell only (``lipschitz_on_box`` on B_inf(x_i, eps) cap [0,1]^64). Figures: seconds per sample (all
classes), the fraction of programs solved to optimality, and the tightness ratio of the local engine's
bound over the exact milp constant (max over classes, mean over samples), measured in the same run.
Goal: <= 60 s per sample.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from benchmarks.run import row
from wdrobust import data
from wdrobust.certify.local import margin_lipschitz
from wdrobust.certify.milp import ReluNet, lipschitz_on_box
from wdrobust.train import fit

SAMPLES = 3
TIME_LIMIT = 60.0


def main() -> list[dict]:
    torch.manual_seed(0)
    recipe = {"lr": 1e-3, "schedule": "constant", "val_fraction": 0.0}  # fit's defaults before the cosine one
    model = fit(
        "digits", "mlp", arch_kwargs={"widths": [32, 32]}, epochs=30, seed=0, device="cpu", **recipe
    ).model
    x, y = data.load("digits", "test", device="cpu")
    x, y = x[:SAMPLES], y[:SAMPLES]
    net = ReluNet.from_model(model, (1, 8, 8))
    rows = []
    for eps in (0.02, 0.05):
        seconds, optimal, ratios = [], [], []
        local = margin_lipschitz(model, x, y, [eps], "linf", device="cpu")[:, :, 0].double().numpy()
        for i in range(SAMPLES):
            xi = x[i].reshape(-1).double().numpy()
            start = time.perf_counter()
            exact, ok = lipschitz_on_box(net, xi, eps, int(y[i]), "linf", TIME_LIMIT)
            seconds.append(time.perf_counter() - start)
            optimal.append(ok)
            ratios.append(local[i].max() / exact.max())
        tag = f"milp 64-32-32-10 linf eps={eps}, 9 classes"
        rows += [
            row(tag, "seconds per sample (mean)", np.mean(seconds), "s"),
            row(tag, "seconds per sample (max)", np.max(seconds), "s"),
            row(tag, "fraction of samples solved to optimality", np.mean(optimal), ""),
            row(tag, "local bound / milp (mean)", np.mean(ratios), "x"),
        ]
    return rows
