"""Cost of the sound ``local`` certificate relative to plain margin gradients.

Model: the small CNN of wdrobust.nets on 8x8 digits-sized inputs (1 x 8 x 8, 10 classes, random init),
512 samples of the digits test split. Reference: one forward and K - 1 = 9 margin backward passes of the
same batch (nets.gradients.margin_gradients over the classes j != y). Figures: time of the local
certificate (all classes, linf, eps = 0.1) divided by the reference, for the default shell grid
(base.default_radii: 8 shells, the last = the whole box, computed once per label) and for one shell.
"""

from __future__ import annotations

import time

import torch

from wdrobust import nets
from wdrobust.certify.bounds.lipschitz import other_classes
from wdrobust.certify.local import LocalCertificate
from wdrobust.data import load
from wdrobust.nets.gradients import margin_gradients
from wdrobust.threat import ThreatModel


def _best_of(fn, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> list[dict]:
    """Rows {benchmark, figure, value, unit} for the local certificate."""
    torch.manual_seed(0)
    model = nets.build("cnn", input_shape=(1, 8, 8)).eval()
    x, y = load("digits", "test")
    x, y = x[:512], y[:512]
    threat = ThreatModel("linf", 0.1)
    classes = other_classes(y, 10)
    ref = _best_of(lambda: margin_gradients(model, x, y, classes))
    full = LocalCertificate(model, threat, batch_size=512, device="cpu")
    one = LocalCertificate(model, threat, radii=[0.1], batch_size=512, device="cpu")
    t_full = _best_of(lambda: full.run(x, y))
    t_one = _best_of(lambda: one.run(x, y))
    shells = len(full.shell_radii(64))
    return [
        {
            "benchmark": "certify_local",
            "figure": "reference seconds (fwd + 9 margin bwd, 512 x 1x8x8)",
            "value": ref,
            "unit": "s",
        },
        {
            "benchmark": "certify_local",
            "figure": f"local / reference, default grid ({shells} shells)",
            "value": t_full / ref,
            "unit": "x",
        },
        {
            "benchmark": "certify_local",
            "figure": "local / reference, one shell (+ whole box)",
            "value": t_one / ref,
            "unit": "x",
        },
    ]
