"""Attack overhead: time per gradient step of an attack / time of one raw forward+backward of the same batch.

A "step" is one batch-equivalent backward pass (backward_passes / n), so the ratio charges the attack
with everything else it does per step: the forward-only evaluations, projections, candidate recording
and bookkeeping. Goal: <= 1.3. Models on CIFAR-sized inputs (3 x 32 x 32, 10 classes), eval mode, CPU.
The machine is shared, so both are measured as CPU time of this process on one thread (time.process_time,
insensitive to other processes waiting for the cores), minima over interleaved repeats.

Competitors on the same batch, in the same repeats (rows skipped when the package is absent): torchattacks'
PGD (its random start, step 2.5 eps / steps, as ours) and AutoAttack's APGD-CE (pyautoattack
``APGDAttack``, one restart), each charged per batch-equivalent backward pass counted on the logits
(``PassCounting``), like ours. The labels are the model's own predictions, so that AutoAttack, which attacks
only correctly classified points, attacks the whole batch as the others do.

Reference WDA: with WDROBUST_REFERENCE_WDA set to a local copy of ``wda.py`` of the paper's public
repository (OLab-Repo/WDA; never part of this project), wdrobust's WDA and the reference's ``run_wda`` run
at matched settings (steps 20, top-k 3, 3 probe steps, linf eps 0.1, all 450 digits test samples in one
batch, the default digits MLP) and the rows give the time ratio and both robust accuracies; without it
these rows are skipped.

    WDROBUST_REFERENCE_WDA=/path/to/wda.py python -m benchmarks.run attacks
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from benchmarks.run import row
from wdrobust import data, nets
from wdrobust.attacks import ATTACKS
from wdrobust.attacks.autoattack import PassCounting
from wdrobust.attacks.passes import Passes
from wdrobust.models import default_model_path
from wdrobust.threat import ThreatModel

SHAPE = (3, 32, 32)
EPS = 8 / 255
#: (arch, build options, batch size, repeats, {attack: options}); ResNet is kept small (minutes on 2 cores).
CASES: list[tuple[str, dict[str, Any], int, int, dict[str, dict[str, Any]]]] = [
    (
        "mlp",
        {"widths": [256, 128]},
        256,
        3,
        {"pgd": {"steps": 20}, "apgd": {"n_iter": 20}, "wda": {"steps": 20}},
    ),
    ("cnn", {}, 64, 2, {"pgd": {"steps": 10}, "apgd": {"n_iter": 10}, "wda": {"steps": 10}}),
    ("preact_resnet18", {}, 8, 2, {"pgd": {"steps": 8}, "wda": {"steps": 8, "probe_steps": 1, "k": 2}}),
]


def raw_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, repeats: int = 3) -> float:
    """CPU seconds of one forward + backward to the input (CE summed over the batch), averaged over
    ``repeats`` consecutive steps."""
    start = time.process_time()
    for _ in range(repeats):
        xg = x.detach().requires_grad_(True)
        loss = F.cross_entropy(model(xg), y, reduction="sum")
        torch.autograd.grad(loss, xg)
    return (time.process_time() - start) / repeats


def fused_apgd_step(
    x: torch.Tensor,
    x_prev: torch.Tensor,
    g: torch.Tensor,
    low: torch.Tensor,
    high: torch.Tensor,
    x0: torch.Tensor,
    eta: torch.Tensor,
    best_x: torch.Tensor,
    best_g: torch.Tensor,
    better: torch.Tensor,
) -> tuple[torch.Tensor, ...]:
    """The arithmetic of one linf APGD step, written to be compiled into one kernel: best point and gradient
    by the row mask better (n, 1, ..., 1), z = clamp(x + eta sign(g), low, high), the momentum step
    clamp(0.75 z + 0.5 x - 0.25 x_prev, low, high) = clamp(lerp(2 x - x_prev, z, 0.75)), and the new
    iterate's distance max |x_new - x0| (n,)."""
    best_g = torch.where(better, g, best_g)
    best_x = torch.where(better, x, best_x)
    z = torch.clamp(x + eta * torch.sign(g), low, high)
    x_new = torch.clamp(0.75 * z + 0.5 * x - 0.25 * x_prev, low, high)
    return x_new, (x_new - x0).abs().flatten(1).amax(1), best_x, best_g


#: ``fused_apgd_step`` compiled (lazily, per input shape, at its first call).
FUSED_APGD_STEP = torch.compile(fused_apgd_step, dynamic=False)


def apgd_floor(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, n_iter: int = 20, fused: bool = False
) -> float | None:
    """CPU seconds per step of the least an APGD step can cost on linf while keeping its arithmetic and
    recording every iterate: one raw forward + backward, the step's arithmetic, and the run's two
    forward-only passes (clean and last iterate) spread over its n_iter steps.

    Eager (default): the step's passes over (n, *S) (sign, addcmul, clamp, two lerps, clamp), the iterate's
    distance (sub, abs, max), the best point and gradient kept by two whole-batch copies (their cheapest
    form: every row improved; a row subset costs more in torch). ``fused``: the same arithmetic as one
    kernel compiled by torch.compile (inductor; ``fused_apgd_step``, compiled before the timing), i.e. the
    step's memory traffic alone; None (with a message) where torch.compile cannot build it (it needs a C++
    compiler)."""
    low, high = (x - EPS).clamp(min=0.0), (x + EPS).clamp(max=1.0)
    eta = torch.full((x.shape[0], *([1] * (x.dim() - 1))), 2 * EPS)
    better = (torch.arange(x.shape[0]) % 2 == 0).reshape(eta.shape)  # the fused kernel's cost ignores it
    best = {"x": x.clone(), "g": x.clone()}
    scratch, cur, prev = (x.clone() for _ in range(3))

    def eager(cur: torch.Tensor, prev: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        torch.sub(cur, x, out=scratch).abs_().amax(dim=tuple(range(1, x.dim())))
        best["g"].copy_(g)
        best["x"].copy_(cur)
        z = torch.clamp(torch.addcmul(cur, eta, torch.sign(g, out=g), out=g), low, high, out=g)
        nxt = torch.lerp(torch.lerp(prev, cur, 2.0, out=prev), z, 0.75, out=z)
        return torch.clamp(nxt, low, high, out=nxt)

    def compiled(cur: torch.Tensor, prev: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        nxt, _, best["x"], best["g"] = FUSED_APGD_STEP(
            cur, prev, g, low, high, x, eta, best["x"], best["g"], better
        )
        return nxt

    if fused:
        try:
            compiled(cur, prev, x.clone())
        except Exception as error:  # no compiler or an unsupported platform: the row is skipped
            print(f"fused apgd floor skipped: torch.compile failed ({type(error).__name__}: {error})")
            return None
    step = compiled if fused else eager
    start = time.process_time()
    for _ in range(2):
        with torch.no_grad():
            model(x)
    for _ in range(n_iter):
        xg = cur.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(F.cross_entropy(model(xg), y, reduction="sum"), xg)
        prev, cur = cur, step(cur, prev, g)
    return (time.process_time() - start) / n_iter


def attack_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, name: str, opts: dict) -> float:
    """CPU seconds per batch-equivalent gradient step of one attack run."""
    start = time.process_time()
    result = ATTACKS[name](model, ThreatModel("linf", EPS), batch_size=x.shape[0], **opts).run(x, y)
    return (time.process_time() - start) / (result.backward_passes / x.shape[0])


def torchattacks_pgd(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> None:
    """torchattacks' PGD with a random start and our step size 2.5 eps / steps, then the clean and the
    adversarial predictions (two forwards: what a robust accuracy needs, and what ours computes too)."""
    reference = importlib.import_module("torchattacks")
    x_adv = reference.PGD(model, eps=EPS, alpha=2.5 * EPS / steps, steps=steps, random_start=True)(x, y)
    with torch.no_grad():
        model(x)
        model(x_adv)


def autoattack_apgd(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int) -> None:
    """AutoAttack's APGD-CE (pyautoattack), one restart of ``steps`` iterations."""
    reference = importlib.import_module("pyautoattack.autopgd_base")
    attack = reference.APGDAttack(
        model, n_iter=steps, eps=EPS, norm="Linf", loss="ce", seed=0, device=x.device
    )
    attack.perturb(x, y)


@dataclass(frozen=True)
class Competitor:
    """A reference implementation of one of our attacks: ``run(counted model, x, y, steps)`` with the
    number of steps our attack's option ``steps_option`` has in the case; ``package`` must be importable."""

    attack: str
    label: str
    package: str
    steps_option: str
    run: Callable[[torch.nn.Module, torch.Tensor, torch.Tensor, int], None]


COMPETITORS = [
    Competitor("pgd", "torchattacks PGD", "torchattacks", "steps", torchattacks_pgd),
    Competitor("apgd", "AutoAttack APGD-CE", "pyautoattack", "n_iter", autoattack_apgd),
]


def available(package: str) -> bool:
    """Whether an optional reference package can be imported."""
    return importlib.util.find_spec(package) is not None


def competitor_step(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, rival: Competitor, steps: int
) -> float:
    """CPU seconds per batch-equivalent backward pass of a competitor's run (passes counted on the logits)."""
    passes = Passes()
    counted = PassCounting(model, passes, tuple(x.shape[1:]))
    start = time.process_time()
    rival.run(counted, x, y, steps)
    return (time.process_time() - start) / (passes.backward / x.shape[0])


def reference_rows(repeats: int = 25) -> list[dict]:
    """WDA against the reference ``run_wda`` at matched settings (module docstring): CPU-time ratios
    (wdrobust recording zero_one only, as the reference, and recording every loss) and robust accuracies."""
    path = Path(os.environ.get("WDROBUST_REFERENCE_WDA", ""))
    if not path.is_file():
        print("reference WDA skipped: set WDROBUST_REFERENCE_WDA to a copy of OLab-Repo/WDA wda.py")
        return []
    spec = importlib.util.spec_from_file_location("reference_wda", path)
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)
    model = nets.load(default_model_path(), device="cpu").eval().requires_grad_(False)
    x, y = data.load("digits", "test", device="cpu")
    eps, n = 0.1, x.shape[0]

    def reference() -> float:
        x_adv, _, _ = ref.run_wda(
            model, x, y, eps=eps, steps=20, bs=n, topk=3, probe_steps=3, device="cpu", verbose=False,
            return_history=False,
        )  # fmt: skip
        with torch.no_grad():
            return float((model(x_adv).argmax(1) == y).double().mean())

    def ours(losses: tuple[str, ...] | None) -> float:
        threat = ThreatModel("linf", eps)
        wda = ATTACKS["wda"](model, threat, batch_size=n, k=3, probe_steps=3, steps=20, losses=losses)
        return wda.run(x, y).robust_accuracy()

    runs = {"reference": reference, "zero_one": lambda: ours(("zero_one",)), "all": lambda: ours(None)}
    best, accuracy = dict.fromkeys(runs, float("inf")), {}
    for _ in range(repeats):
        for name, fn in runs.items():
            start = time.process_time()
            accuracy[name] = fn()
            best[name] = min(best[name], time.process_time() - start)
    figure = "time / reference time (WDA, steps 20, top-k 3, probe 3; goal <= 1)"
    return [
        row("attacks/digits-mlp/wda-reference", "reference run_wda CPU s", best["reference"], "s"),
        row("attacks/digits-mlp/wda-reference", "reference robust accuracy", accuracy["reference"], ""),
        row("attacks/digits-mlp/wda-reference", "wdrobust robust accuracy", accuracy["all"], ""),
        row(
            "attacks/digits-mlp/wda-reference",
            figure + ", zero_one recorded",
            best["zero_one"] / best["reference"],
            "x",
        ),
        row(
            "attacks/digits-mlp/wda-reference",
            figure + ", all losses recorded",
            best["all"] / best["reference"],
            "x",
        ),
    ]


def main() -> list[dict]:
    """One row per (model, attack): the overhead ratio, plus the raw step time per model, the eager and
    fused floors of an apgd step (``apgd_floor``) and, where installed, each competitor's ratio and ours /
    the competitor's time per step; then the reference-WDA rows (when the reference is available)."""
    rows = []
    gen = torch.Generator().manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    for arch, options, batch, repeats, attacks in CASES:
        model = nets.build(arch, input_shape=SHAPE, num_classes=10, seed=0, **options).eval()
        x = torch.rand(batch, *SHAPE, generator=gen)
        with torch.no_grad():
            y = model(x).argmax(1)
        raw_step(model, x, y, repeats=1)  # warm-up
        rivals = [c for c in COMPETITORS if c.attack in attacks and available(c.package)]
        raws: list[float] = []
        steps: dict[str, list[float]] = {name: [] for name in attacks}
        theirs: dict[str, list[float]] = {rival.label: [] for rival in rivals}
        floors: list[float] = []
        fused: list[float] = []
        for _ in range(repeats):
            raws.append(raw_step(model, x, y, repeats=5))
            for name, opts in attacks.items():
                steps[name].append(attack_step(model, x, y, name, opts))
            for rival in rivals:
                count = attacks[rival.attack][rival.steps_option]
                theirs[rival.label].append(competitor_step(model, x, y, rival, count))
            if "apgd" in attacks:
                for kind, times in ((False, floors), (True, fused)):
                    floor = apgd_floor(model, x, y, attacks["apgd"]["n_iter"], fused=kind)
                    if floor is not None:
                        times.append(floor)
        raw = min(raws)
        figure = f"raw fwd+bwd, batch {batch}"
        rows.append(row(f"attacks/{arch}", figure, raw, "s"))
        for name, per_step in steps.items():
            figure = "time per step / raw fwd+bwd (goal <= 1.3)"
            rows.append(row(f"attacks/{arch}/{name}", figure, min(per_step) / raw, "x"))
        if floors:
            figure = "floor of an apgd step (apgd_floor) / raw fwd+bwd"
            rows.append(row(f"attacks/{arch}/apgd", figure, min(floors) / raw, "x"))
        if fused:
            figure = "fused floor of an apgd step (apgd_floor fused, torch.compile) / raw fwd+bwd"
            rows.append(row(f"attacks/{arch}/apgd", figure, min(fused) / raw, "x"))
        for rival in rivals:
            theirs_best, name = min(theirs[rival.label]), f"attacks/{arch}/{rival.attack}"
            rows.append(row(name, f"{rival.label}: time per step / raw fwd+bwd", theirs_best / raw, "x"))
            figure = f"time per step / {rival.label} time per step (goal <= 1)"
            rows.append(row(name, figure, min(steps[rival.attack]) / theirs_best, "x"))
    rows += reference_rows()
    torch.set_num_threads(threads)
    return rows
