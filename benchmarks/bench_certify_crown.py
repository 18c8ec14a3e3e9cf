"""Cost of the sound ``crown`` certificate relative to plain margin gradients, and its peak memory.

Models: the default digits MLP (64-32-32-10, trained) and the small CNN of wdrobust.nets on 8x8 inputs
(random init, seed 0); data: the first N = 16 digits test samples; linf, eps = 0.03. Reference: one
forward and K - 1 = 9 margin backward passes of the same batch (nets.gradients.margin_gradients).
Figures (timings interleaved, best of REPEATS, so that load changes affect all alike):
- one radius: crown with radii = [eps] (rows: N samples x (eps, its halvings) plus the whole box
  once per class, certified radius by bisection) / reference, and seconds per sample;
- per radius: the same time divided by the number of radii of its grid;
- default grid: crown with its default grid (12 shells subdivided) / reference;
- peak memory: peak resident memory (``resource.getrusage`` maxrss, MiB) of a fresh process running crown
  on the CNN batch, minus its resident memory just before the run (/proc/self/status VmRSS; Linux).
"""

from __future__ import annotations

import json
import subprocess
import sys

import torch

from benchmarks.run import interleaved_best, row
from wdrobust import nets
from wdrobust.certify.bounds.lipschitz import other_classes
from wdrobust.certify.crown import CrownCertificate
from wdrobust.data import load
from wdrobust.models import default_model_path
from wdrobust.nets.gradients import margin_gradients

REPEATS = 1
EPS = 0.03
N = 16

_MEMORY = """
import json, resource, sys, torch
from wdrobust import nets
from wdrobust.certify.crown import CrownCertificate
from wdrobust.data import load
torch.manual_seed(0)
model = nets.build("cnn", input_shape=(1, 8, 8)).eval()
x, y = load("digits", "test")
x, y = x[:{n}], y[:{n}]
cert = CrownCertificate(model, "linf", radii=[{eps}], batch_size={n}, device="cpu")
with open("/proc/self/status") as f:  # current resident set (kB), not the peak of the imports
    base = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
cert.run(x, y)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"mib": (peak - base) / 1024}}))
"""


def _model_rows(label: str, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[dict]:
    classes = other_classes(y, 10)
    one = CrownCertificate(model, "linf", radii=[EPS], batch_size=N, device="cpu")
    around = CrownCertificate.options_for("linf", EPS, x[0].numel())
    full = CrownCertificate(model, "linf", batch_size=N, device="cpu", **around)
    radii_one = one.crown_radii(x[0].numel()).size
    radii_full = full.crown_radii(x[0].numel()).size
    t = interleaved_best(
        {
            "ref": lambda: margin_gradients(model, x, y, classes),
            "one": lambda: one.run(x, y),
            "full": lambda: full.run(x, y),
        },
        REPEATS,
    )
    name = f"certify_crown_{label}"
    return [
        row(name, f"reference seconds (fwd + 9 margin bwd, {N} samples)", t["ref"], "s"),
        row(
            name,
            f"one radius: crown / reference ({radii_one} radii incl. halvings and box)",
            t["one"] / t["ref"],
            "x",
        ),
        row(name, "one radius: seconds per sample", t["one"] / N, "s"),
        row(name, "per radius: crown / reference / radii", t["one"] / t["ref"] / radii_one, "x"),
        row(name, f"default grid: crown / reference ({radii_full} radii)", t["full"] / t["ref"], "x"),
        row(name, "default grid: seconds per sample", t["full"] / N, "s"),
    ]


def _peak_memory_mib() -> float:
    """Extra peak resident memory of crown on the CNN batch, measured in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-c", _MEMORY.format(n=N, eps=EPS)], capture_output=True, text=True, check=True
    )
    return float(json.loads(done.stdout.strip().splitlines()[-1])["mib"])


def main() -> list[dict]:
    """Rows {benchmark, figure, value, unit} for the crown certificate."""
    torch.set_num_threads(1)
    x, y = load("digits", "test")
    x, y = x[:N], y[:N]
    mlp = nets.load(default_model_path(), device="cpu").eval()
    torch.manual_seed(0)
    cnn = nets.build("cnn", input_shape=(1, 8, 8)).eval()
    rows = _model_rows("mlp", mlp, x, y) + _model_rows("cnn", cnn, x, y)
    rows.append(
        row("certify_crown_cnn", f"peak extra memory, one radius, {N} samples", _peak_memory_mib(), "MiB")
    )
    return rows
