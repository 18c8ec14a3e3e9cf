"""The bound engine against its anchor, auto_LiRPA 0.7.1 (the engine of alpha-beta-CROWN), in one run.

    python -m benchmarks.run certify_lirpa
    python -m benchmarks.bench_certify_lirpa digits_mlp fashion_mlp3     # only these models
    python -m benchmarks.bench_certify_lirpa fashion_cnn methods=CROWN  # only these methods (a,b,...)

Skips unless auto_LiRPA is importable (a benchmark reference only, never a dependency: install its 0.7.1
source from the Verified-Intelligence/auto_LiRPA repository with `pip install --no-deps .`, plus packaging,
appdirs, pyyaml, tqdm and graphviz). Both engines run in float64 on one CPU thread, on the same model,
samples and regions B(x, eps) cap [0, 1]^d (linf), with the specification z_j - z_y for every j != y:
wdrobust's ``margin_bounds`` gives U_j >= max z_j - z_y, auto_LiRPA's ``compute_bounds`` with
C = e_y - e_j gives L_j <= min z_y - z_j, so the two must satisfy U_j = -L_j.

Models: the shipped digits MLP (64-128-64-10) at eps 0.1; the small CNN of wdrobust.nets on 8x8 digits
(random init, seed 0) at eps 0.03; and where Fashion-MNIST is installed (`apt-get install
dataset-fashion-mnist`), the MLP 784-256-128-10 and the CNN 16-32/100 of docs/fashion.md and the deeper
MLP 784-256-256-128-10, trained when missing into runs/models/ with `wdrobust train` (the commands quoted in
docs/fashion.md; the deeper one with --widths 256,256,128), at eps 0.03 (MLPs) and 0.01. Figures per model:
- CROWN-IBP and CROWN: the largest |U + L| over samples and classes (agreement), and seconds per sample of
  wdrobust / auto_LiRPA (best of REPEATS interleaved runs);
- alpha-CROWN (20 steps each: wdrobust's ``alpha_steps``, auto_LiRPA's ``CROWN-Optimized`` with
  iteration 20, which optimises the slopes of every intermediate bound too): the mean over samples of the
  worst-margin bound max_j U_j (auto_LiRPA: max_j -L_j; smaller is tighter), and the time ratio, for
  wdrobust's alpha="output" (the output pass's slopes only) and, on the MLPs, alpha="full" (the same
  problem as auto_LiRPA's; on the CNNs its dense per-neuron passes are too slow to be worth the wait).
"""

from __future__ import annotations

import copy
import importlib.util
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from benchmarks.run import row
from wdrobust import data, nets
from wdrobust.certify.bounds.graph import BoundGraph
from wdrobust.certify.bounds.propagation import margin_bounds
from wdrobust.certify.bounds.region import Region
from wdrobust.models import default_model_path

#: Samples per model and interleaved timing rounds.
N, REPEATS = 8, 2
#: alpha-CROWN optimisation steps of both engines.
ALPHA_STEPS = 20
FASHION_ROOT = Path("/usr/share/datasets/fashion-mnist")
CLI = str(Path(sys.executable).with_name("wdrobust"))
#: docs/fashion.md's training commands (architecture flags) and the eps each model is bounded at.
FASHION = {
    "fashion-mlp": (["--arch", "mlp", "--widths", "256,128"], 0.03),
    "fashion-cnn": (["--arch", "cnn", "--widths", "16,32", "--hidden", "100"], 0.01),
    "fashion-mlp3": (["--arch", "mlp", "--widths", "256,256,128"], 0.03),
}
#: wdrobust's alpha modes compared with auto_LiRPA's CROWN-Optimized (full: on the MLPs only).
ALPHA = {"alpha-CROWN": "output", "alpha-CROWN full": "full"}


def available() -> bool:
    """Whether auto_LiRPA can be imported."""
    return importlib.util.find_spec("auto_LiRPA") is not None


def specs(y: torch.Tensor, k: int) -> torch.Tensor:
    """(B, K-1, K) rows e_j - e_y for every j != y_b, in float64."""
    eye = torch.eye(k, dtype=torch.float64)
    rows = [torch.stack([eye[j] - eye[int(c)] for j in range(k) if j != int(c)]) for c in y]
    return torch.stack(rows)


def ours(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, full: bool) -> dict[str, Callable]:
    """wdrobust's bound functions (name -> () -> U (B, K-1)) on a float64 copy of the model (full: with
    alpha-CROWN's full mode)."""
    graph = BoundGraph(copy.deepcopy(model).double().eval())
    x0, r = x.double(), torch.full((len(x),), eps, dtype=torch.float64)
    spec = specs(y, 10)

    def bound(intermediate: str, steps: int = 0, alpha: str = "output") -> Callable[[], torch.Tensor]:
        options = {"intermediate": intermediate, "alpha_steps": steps, "alpha": alpha}
        return lambda: margin_bounds(graph, Region.ball(x0, r, "linf"), spec, **options)[0]

    out = {"CROWN-IBP": bound("ibp"), "CROWN": bound("crown")}
    for name, mode in ALPHA.items():
        if full or mode != "full":
            out[name] = bound("crown", ALPHA_STEPS, mode)
    return out


def theirs(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float) -> dict[str, Callable]:
    """auto_LiRPA's bound functions (name -> () -> -L (B, K-1), comparable to U) on a float64 copy."""
    from auto_LiRPA import BoundedModule, BoundedTensor, PerturbationLpNorm

    x0 = x.double()
    net = BoundedModule(
        copy.deepcopy(model).double().eval(), torch.zeros_like(x0[:1]), device="cpu", verbose=0,
        bound_opts={"optimize_bound_args": {"iteration": ALPHA_STEPS}},
    )  # fmt: skip
    box = {"x_L": (x0 - eps).clamp(0, 1), "x_U": (x0 + eps).clamp(0, 1)}
    ptb = PerturbationLpNorm(norm=float("inf"), eps=eps, **box)
    c = -specs(y, 10)

    def bound(method: str) -> Callable[[], torch.Tensor]:
        def run() -> torch.Tensor:
            lower, _ = net.compute_bounds(x=(BoundedTensor(x0, ptb),), C=c, method=method, bound_upper=False)
            return -lower.detach()

        return run

    optimised = bound("CROWN-Optimized")
    return {"CROWN-IBP": bound("CROWN-IBP"), "CROWN": bound("CROWN"), **dict.fromkeys(ALPHA, optimised)}


def _timed(fn: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, float]:
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def compare(
    label: str,
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    full: bool,
    methods: set[str] | None = None,
) -> list[dict]:
    """Rows of one model: agreement and time ratios of CROWN-IBP and CROWN, alpha-CROWN tightness (full:
    also alpha-CROWN's full mode); methods: only these (default all)."""
    mine, rival = ours(model, x, y, eps, full), theirs(model, x, y, eps)
    rows: list[dict] = []
    name = f"certify_lirpa_{label}"
    for method in (m for m in mine if methods is None or m in methods):
        best = {"ours": float("inf"), "theirs": float("inf")}
        for _ in range(REPEATS):
            u, t_ours = _timed(mine[method])
            v, t_theirs = _timed(rival[method])
            best = {"ours": min(best["ours"], t_ours), "theirs": min(best["theirs"], t_theirs)}
        where = f"{method}, eps {eps:g}, {len(x)} samples"
        if method in ALPHA:
            rows.append(row(name, f"{where}: mean worst-margin bound, wdrobust", u.amax(1).mean(), ""))
            rows.append(row(name, f"{where}: mean worst-margin bound, auto_LiRPA", v.amax(1).mean(), ""))
        else:
            rows.append(row(name, f"{where}: max |U - U_auto_LiRPA|", (u - v).abs().max(), ""))
        rows.append(row(name, f"{where}: s per sample, wdrobust", best["ours"] / len(x), "s"))
        rows.append(row(name, f"{where}: s per sample, auto_LiRPA", best["theirs"] / len(x), "s"))
        rows.append(row(name, f"{where}: time wdrobust / auto_LiRPA", best["ours"] / best["theirs"], "x"))
    return rows


def fashion_model(name: str) -> Path | None:
    """runs/models/<name>.safetensors, trained with docs/fashion.md's command when missing; None without
    the Fashion-MNIST files."""
    if not any(FASHION_ROOT.glob("t10k-images*")):
        return None
    path = Path("runs/models") / f"{name}.safetensors"
    if not path.exists():
        cmd = [CLI, "train", "--data", "fashion-mnist", "--root", str(FASHION_ROOT), *FASHION[name][0],
               "--out", str(path), "-q", "--device", "cpu"]  # fmt: skip
        subprocess.run(cmd, check=True)
    return path


def main(only: set[str] | None = None, methods: set[str] | None = None) -> list[dict]:
    """Rows {benchmark, figure, value, unit} for benchmarks/run.py (only: these model labels, e.g.
    digits_mlp, fashion_mlp3; methods: these methods, e.g. CROWN; default all)."""
    if not available():
        print("skipped: auto_LiRPA is not installed (see the module docstring)")
        return []
    torch.set_num_threads(1)
    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # auto_LiRPA's CROWN-Optimized in float64 needs it
    try:
        x, y = data.load("digits", "test", device="cpu")
        x, y = x[:N], y[:N]
        rows: list[dict] = []
        if only is None or "digits_mlp" in only:
            rows += compare(
                "digits_mlp", nets.load(default_model_path(), device="cpu"), x, y, 0.1, True, methods
            )
        if only is None or "digits_cnn" in only:
            torch.manual_seed(0)
            cnn = nets.build("cnn", input_shape=(1, 8, 8)).eval()
            rows += compare("digits_cnn", cnn, x, y, 0.03, False, methods)
        for name, (flags, eps) in FASHION.items():
            label = name.replace("-", "_")
            if only is not None and label not in only:
                continue
            path = fashion_model(name)
            if path is None:
                print(f"skipped {name}: no Fashion-MNIST files in {FASHION_ROOT}")
                continue
            fx, fy = data.load("fashion-mnist", "test", root=FASHION_ROOT, device="cpu")
            model = nets.load(path, device="cpu")
            rows += compare(label, model, fx[:N], fy[:N], eps, "mlp" in flags, methods)
    finally:
        torch.set_default_dtype(default_dtype)
    return rows


if __name__ == "__main__":
    models = {a for a in sys.argv[1:] if not a.startswith("methods=")}
    chosen = {m for a in sys.argv[1:] if a.startswith("methods=") for m in a.split("=", 1)[1].split(",")}
    for r in main(models or None, chosen or None):
        print(r)
