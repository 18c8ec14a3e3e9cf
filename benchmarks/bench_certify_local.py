"""Cost of the sound ``local`` certificate relative to plain margin gradients.

Model: the small CNN of wdrobust.nets on 8x8 digits-sized inputs (1 x 8 x 8, 10 classes, random init, seed
0), the first 512 samples of the digits train split (the test split has only 450). Reference: one forward
and K - 1 = 9 margin backward passes of the same batch (nets.gradients.margin_gradients over the classes
j != y). Figures: time of the local certificate (all classes, linf, eps = 0.1, one batch of 512) divided
by the reference,
- per shell: radii = [eps], i.e. one shell of 512 rows (plus the whole-box shell, computed once per label
  on 10 rows), the issue's goal is <= 3;
- default grid: certify.local's default shells (all but the last are per-sample shells).
Timings are interleaved (reference, one shell, default grid, repeated) and the best of each is kept, so
that a load change on the shared machine affects all three alike.

Grid trade-off (``grid_rows``): the upper bound of the CE risk with a 6-shell grid [eps/4, eps/2, eps,
2 eps, 4 eps, diam] divided by the one with the default 8-shell grid, for p = 1, 2, inf (default digits
MLP, digits test split, linf, eps = 0.03), and the time ratio of the two certificates.
"""

from __future__ import annotations

import numpy as np
import torch

from benchmarks.run import interleaved_best, row
from wdrobust import nets
from wdrobust.certify.bounds.lipschitz import other_classes
from wdrobust.certify.local import LocalCertificate
from wdrobust.data import load
from wdrobust.models import default_model_path
from wdrobust.nets.gradients import margin_gradients
from wdrobust.threat import ThreatModel


def grid_rows(eps: float = 0.03) -> list[dict]:
    """UB(6-shell grid) / UB(default grid) of the CE risk for p = 1, 2, inf, and their time ratio."""
    model = nets.load(default_model_path(), device="cpu")
    x, y = load("digits", "test")
    d = x[0].numel()
    diam = ThreatModel("linf", eps).diameter(d)
    grids = {
        "default": LocalCertificate.options_for("linf", eps, d)["radii"],
        "six": np.array([eps / 4, eps / 2, eps, 2 * eps, 4 * eps, diam]),
    }
    certs = {
        k: LocalCertificate(model, "linf", losses=("ce",), radii=r, device="cpu") for k, r in grids.items()
    }
    results = {k: c.run(x, y) for k, c in certs.items()}
    t = interleaved_best({k: (lambda c=c: c.run(x, y)) for k, c in certs.items()})
    rows = []
    for p in (1, 2, "inf"):
        ub = {k: r.upper_bound("ce", ThreatModel("linf", eps, p)).risk for k, r in results.items()}
        figure = f"grid [eps/4..4eps, diam] / default: UB of CE risk, p={p} (digits MLP, eps={eps})"
        rows.append(row("certify_local", figure, ub["six"] / ub["default"], "x"))
    figure = "grid [eps/4..4eps, diam] / default: time (digits MLP)"
    rows.append(row("certify_local", figure, t["six"] / t["default"], "x"))
    return rows


def main() -> list[dict]:
    """Rows {benchmark, figure, value, unit} for the local certificate."""
    torch.manual_seed(0)
    model = nets.build("cnn", input_shape=(1, 8, 8)).eval()
    x, y = load("digits", "train")
    x, y = x[:512], y[:512]
    threat = ThreatModel("linf", 0.1)
    classes = other_classes(y, 10)
    around = LocalCertificate.options_for("linf", threat.eps, x[0].numel())
    full = LocalCertificate(model, "linf", batch_size=512, device="cpu", **around)
    one = LocalCertificate(model, "linf", radii=[threat.eps], batch_size=512, device="cpu")
    shells = len(full.shell_radii(x[0].numel()))
    t = interleaved_best(
        {
            "ref": lambda: margin_gradients(model, x, y, classes),
            "one": lambda: one.run(x, y),
            "full": lambda: full.run(x, y),
        }
    )
    return [
        row("certify_local", "reference seconds (fwd + 9 margin bwd, 512 x 1x8x8)", t["ref"], "s"),
        row(
            "certify_local", "per shell: local / reference, radii=[eps] (goal <= 3)", t["one"] / t["ref"], "x"
        ),
        row(
            "certify_local",
            f"default grid: local / reference ({shells} shells, last = whole box)",
            t["full"] / t["ref"],
            "x",
        ),
        *grid_rows(),
    ]
