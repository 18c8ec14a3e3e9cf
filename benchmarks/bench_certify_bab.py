"""Branch and bound (certify/bab): domains per second and time to verify per instance.

- small CNN of wdrobust.nets on 8x8 digits (random init, seed 0), first test digit and its predicted
  class, linf r = RADIUS, ReLU splits, time limit LIMIT s: BaB domains bounded per second;
- VNN-COMP 2021 mnistfc (shared folder; skipped when absent): the first INSTANCES instances of
  instances.csv, each net loaded with ``nets.load``, the robustness property recovered as (x, y, eps),
  ReLU-split BaB with a MNISTFC_LIMIT s limit: seconds per instance and verdicts (unsat = verified,
  sat = falsified, unknown).
"""

from __future__ import annotations

from pathlib import Path

import torch

from benchmarks.run import row
from wdrobust import nets
from wdrobust.certify.bab import BabOptions, verify
from wdrobust.certify.bounds import BoundGraph
from wdrobust.data import load
from wdrobust.data.vnnlib import ball_of, read_instances, read_vnnlib, robustness_of

LIMIT = 10.0
RADIUS = 0.01
MNISTFC = Path("/work/shared/benchmarks/vnncomp/2021_mnistfc")
INSTANCES = 3
MNISTFC_LIMIT = 30.0


def _cnn_rows() -> list[dict]:
    torch.manual_seed(0)
    cnn = nets.build("cnn", input_shape=(1, 8, 8)).eval().double()
    x, _ = load("digits", "test")
    graph = BoundGraph(cnn.requires_grad_(False))
    x0 = x[0].double()
    label = int(cnn(x0[None]).argmax())  # the random net's own prediction
    res = verify(graph, x0, label, RADIUS, "linf", BabOptions(time_limit=LIMIT, mode="relu"))
    return [
        row(
            "certify_bab_cnn",
            f"domains per second ({res.status}, {res.domains} domains)",
            res.domains / res.seconds,
            "1/s",
        ),
    ]


def _mnistfc_rows() -> list[dict]:
    if not (MNISTFC / "instances.csv").exists():
        return []
    rows, verdicts = [], []
    seconds, domains = 0.0, 0
    for inst in read_instances(MNISTFC / "instances.csv")[:INSTANCES]:
        model = nets.load(str(inst.onnx), device="cpu").eval().double().requires_grad_(False)
        prop = read_vnnlib(inst.vnnlib)
        y = robustness_of(prop)
        x, eps = ball_of(prop.lo, prop.hi)
        x0 = torch.as_tensor(x, dtype=torch.float64)
        graph = BoundGraph(model)
        res = verify(graph, x0, int(y), float(eps), "linf", BabOptions(time_limit=MNISTFC_LIMIT, mode="relu"))
        seconds += res.seconds
        domains += res.domains
        verdicts.append({"verified": "unsat", "falsified": "sat"}.get(res.status, "unknown"))
    n = len(verdicts)
    rows.append(
        row("certify_bab_mnistfc", f"seconds per instance ({n}: {', '.join(verdicts)})", seconds / n, "s")
    )
    rows.append(row("certify_bab_mnistfc", "domains per second", domains / max(seconds, 1e-9), "1/s"))
    return rows


def main() -> list[dict]:
    """Rows {benchmark, figure, value, unit} for branch and bound."""
    torch.set_num_threads(1)
    return _cnn_rows() + _mnistfc_rows()
