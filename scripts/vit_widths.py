"""Where the sound bounds of a transformer explode: the largest box width of every graph value, by interval
propagation (IBP) and after CROWN tightening (intermediate="crown"), and the margin upper bound at the end.

    PYTHONPATH=src .venv/bin/python scripts/vit_widths.py digits [--eps 0.005] [--n 2]
    PYTHONPATH=src .venv/bin/python scripts/vit_widths.py vnncomp [--index 0]

digits: vit_tiny (depth 2) of scripts/transformer_tables.py (trained when missing), the first n digits test
samples, the linf ball of radius eps cap [0, 1]; the specification rows are the margins z_j - z_y.
vnncomp: the 2023 VNN-COMP ViT (shared/benchmarks/vnncomp/2023_vit) on the property of row ``index`` of
instances.csv, its box as given; the rows are the property's (-C, as ``spec_lower`` bounds them).
Prints one line per value: node, shape, max width by IBP, max width after CROWN (float64 throughout),
the max width of the values sampled at SAMPLES random corners of the region and, for the values CROWN
tightens, at the corners that maximise CROWN's linear bounds (``corner_widths``): lower bounds of the
true width, i.e. how loose the sound widths are; and the seconds of the CROWN tightening.
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import torch
from _models import ensure_trained
from transformer_tables import MODELS

from wdrobust import data, nets
from wdrobust.certify.bounds import BoundGraph, Bounds
from wdrobust.certify.bounds.lipschitz import margin_cotangents
from wdrobust.certify.bounds.propagation import Crown, concretize
from wdrobust.certify.bounds.region import Region

#: Random corners of the region sampled per row for the empirical widths.
SAMPLES = 512
VNNCOMP = Path(__file__).resolve().parents[2] / "shared/benchmarks/vnncomp/2023_vit"


def digits_case(eps: float, n: int) -> tuple[torch.nn.Module, Region, torch.Tensor]:
    """(float64 vit_tiny, the linf regions of the first n test samples, the margin rows (n, 9, 10))."""
    path, extra = MODELS["vit_tiny (depth 2)"]
    model = nets.load(ensure_trained(path, extra), device="cpu").double().eval()
    x, y = data.load("digits", "test", device="cpu")
    x, y = x[:n].double(), y[:n]
    region = Region.ball(x, torch.full((n,), eps, dtype=torch.float64), "linf")
    return model, region, margin_cotangents(y, 10)[1].double()


def vnncomp_case(index: int) -> tuple[torch.nn.Module, Region, torch.Tensor]:
    """(float64 ONNX ViT, the property's box (1, 3, 32, 32), the rows -C (1, M, 10))."""
    from wdrobust.data.vnnlib import read_instances, read_vnnlib
    from wdrobust.verify.problem import Network, Problem

    row = read_instances(VNNCOMP / "instances.csv")[index]
    net = Network(nets.load(row.onnx, device="cpu"))
    problem = Problem(net, read_vnnlib(row.vnnlib))
    print(f"# {row.vnnlib.name}")
    return copy.deepcopy(net.model64), problem.region, -problem.c


def sampled_widths(graph: BoundGraph, region: Region, g: torch.Generator) -> dict:
    """{node: max over rows and entries of (max - min) of the node's value at SAMPLES random corners}."""
    widths: dict = {}
    for b in range(region.lo.shape[0]):
        lo, hi = region.lo[b], region.hi[b]
        pick = torch.rand((SAMPLES, *lo.shape), generator=g, dtype=lo.dtype) < 0.5
        env = graph.evaluate(torch.where(pick, hi, lo))
        for node in graph.interval:
            v = env[node]
            w = float((v.amax(dim=0) - v.amin(dim=0)).max())
            widths[node] = max(widths.get(node, 0.0), w)
    return widths


def corner_widths(graph: BoundGraph, crown: Crown, ibp: Bounds, region: Region) -> dict:
    """{node: max over rows and entries of f(x+) - f(x-)} for the values CROWN tightened (narrower than by
    interval propagation), where x+- is the corner of the input box that maximises CROWN's linear upper
    bound of +-f (near the extremes of f: a much better lower bound of the true width than random
    corners)."""
    widths: dict = {}
    for node, box in crown.bounds.boxes.items():
        if not bool((box.hi - box.lo < ibp.boxes[node].hi - ibp.boxes[node].lo).any()):
            continue
        shape, m = box.lo.shape[1:], box.lo[0].numel()
        eye = torch.eye(m, dtype=box.lo.dtype).reshape(m, *shape)
        for b in range(region.lo.shape[0]):
            rows = torch.tensor([b])
            a, _ = crown.backward(node, torch.cat([eye, -eye]).unsqueeze(0), rows)
            corners = torch.where(a[0] > 0, region.hi[b], region.lo[b])  # (2m, *S_in)
            values = graph.evaluate(corners)[node].flatten(1)
            idx = torch.arange(m)
            w = float((values[idx, idx] - values[m + idx, idx]).max())
            widths[node] = max(widths.get(node, 0.0), w)
    return widths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", choices=("digits", "vnncomp"))
    parser.add_argument("--eps", type=float, default=0.005)
    parser.add_argument("--n", type=int, default=2)
    parser.add_argument("--index", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(2)
    model, region, spec = digits_case(args.eps, args.n) if args.case == "digits" else vnncomp_case(args.index)
    graph = BoundGraph(model)
    with torch.no_grad():
        ibp = graph.bounds(region)
        start = time.perf_counter()
        crown = Crown(graph, region, "crown")
        seconds = time.perf_counter() - start
        a, bias = crown.backward(graph.output, spec)
        upper = concretize(a, bias, region)
        sampled = sampled_widths(graph, region, torch.Generator().manual_seed(0))
        corners = corner_widths(graph, crown, ibp, region)
    heads = ("ibp width", "crown width", "sampled", "corners")
    print(f"{'node':<28} {'shape':<18} " + " ".join(f"{h:>11}" for h in heads))
    for node, box in ibp.boxes.items():
        tight = crown.bounds.boxes[node]
        print(
            f"{node.name:<28} {tuple(box.lo.shape[1:])!s:<18} {float((box.hi - box.lo).max()):11.4g} "
            f"{float((tight.hi - tight.lo).max()):11.4g} {sampled[node]:11.4g} "
            + (f"{corners[node]:11.4g}" if node in corners else f"{'-':>11}")
        )
    print(f"# crown tightening {seconds:.1f} s; max spec upper bound per row: {upper.amax(dim=1).tolist()}")


if __name__ == "__main__":
    main()
