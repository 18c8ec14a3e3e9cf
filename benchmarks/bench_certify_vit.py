"""Cost of the sound certificates on a vision transformer relative to one forward + backward pass.

Model: vit_tiny of wdrobust.nets on 8x8 inputs (dim 64, depth 2, 4 heads; random init, seed 0); data: the
first N = 4 digits test samples; linf, eps = 0.005. Reference: one forward and one backward pass (the
input gradient of the summed cross-entropy) of the same batch. Figures (interleaved, best of REPEATS):
- crown with radii = [eps] (the eps ball, its halvings and the whole box; the certified radius by
  bisection) per sample / reference, and its seconds per sample;
- local with radii = [eps] (CROWN-tightened boxes, then the interval Jacobian) per sample / reference.
"""

from __future__ import annotations

import torch

from benchmarks.run import interleaved_best, row
from wdrobust import nets
from wdrobust.certify.crown import CrownCertificate
from wdrobust.certify.local import LocalCertificate
from wdrobust.data import load

REPEATS = 1
EPS = 0.005
N = 4


def main() -> list[dict]:
    torch.manual_seed(0)
    model = nets.build("vit_tiny", input_shape=(1, 8, 8), depth=2).eval()
    x, y = load("digits", "test")
    x, y = x[:N], y[:N]
    crown = CrownCertificate(model, "linf", radii=[EPS], batch_size=N, device="cpu")
    local = LocalCertificate(model, "linf", radii=[EPS], batch_size=N, device="cpu")

    def reference() -> None:
        xr = x.clone().requires_grad_(True)
        torch.nn.functional.cross_entropy(model(xr), y, reduction="sum").backward()

    best = interleaved_best(
        {"reference": reference, "crown": lambda: crown.run(x, y), "local": lambda: local.run(x, y)},
        repeats=REPEATS,
    )
    ref = best["reference"]
    return [
        row("certify_vit", "crown per sample / fwd+bwd of the batch", best["crown"] / N / ref, "x"),
        row("certify_vit", "crown seconds per sample", best["crown"] / N, "s"),
        row("certify_vit", "local per sample / fwd+bwd of the batch", best["local"] / N / ref, "x"),
        row("certify_vit", "local seconds per sample", best["local"] / N, "s"),
        row("certify_vit", "fwd+bwd of the batch", ref * 1e3, "ms"),
    ]
