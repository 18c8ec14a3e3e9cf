"""Cost of the paper's CIFAR-10 protocol (configs/cifar10-linf-paper.toml) on the device at hand.

    python scripts/cost_table.py                 # this machine's CPU
    python scripts/cost_table.py --device cuda   # on a GPU: the per-GPU-hour table

Two measurements, both in this run:
1. model passes per image of every attack of the protocol (forward and backward, one job = one (eps, p);
   the protocol has 3 jobs per attack: eps 8/255, p in {1, 2, inf}). They are counted by the attacks
   themselves on CIFAR-shaped inputs (a small CNN, labels set to its own predictions so that no sample
   is skipped as misclassified: an upper estimate for attacks that stop early on broken samples);
   apart from that the counts do not depend on the architecture;
2. seconds per image of one forward and of one forward+backward pass of the paper's architecture, a
   WideResNet-28-10 (RobustBench's CIFAR-10 models), at the protocol's batch size.
Seconds per image = forward passes x forward time + backward passes x (forward+backward - forward) time;
hours for the 10,000 test images follow. Certificates are not included (their cost is not a pass count).
Prints a markdown table (pasted into docs/evaluate.md).
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from wdrobust import nets
from wdrobust.attacks import ATTACKS
from wdrobust.threat import ThreatModel

PROTOCOL = ("autoattack", "a3", "wda", "wda++", "a3-wda")
P_VALUES = (1.0, 2.0, math.inf)
EPS = 8 / 255
N_TEST = 10_000


def passes_per_image(device: str, n: int, attacks: list[str]) -> dict[str, tuple[float, float]]:
    """{attack: (forward, backward) passes per image, summed over the protocol's 3 (eps, p) jobs}."""
    torch.manual_seed(0)
    model = nets.build("cnn", seed=0, input_shape=(3, 32, 32), num_classes=10).to(device).eval()
    x = torch.rand(n, 3, 32, 32, device=device)
    with torch.no_grad():
        y = model(x).argmax(1)
    out = {}
    for name in attacks:
        fwd = bwd = 0
        for p in P_VALUES:
            try:
                threat = ThreatModel("linf", EPS, p)
                attack = ATTACKS[name](model, threat, seed=0, device=device, population=N_TEST)
                result = attack.run(x, y)
            except (ImportError, ValueError) as exc:  # e.g. autoattack without pyautoattack
                print(f"# {name}: skipped ({exc})")
                break
            fwd, bwd = fwd + result.forward_passes, bwd + result.backward_passes
        else:
            out[name] = (fwd / n, bwd / n)
    return out


def seconds_per_pass(device: str, batch: int, repeats: int) -> tuple[float, float]:
    """(forward, forward+backward) seconds per image of a WideResNet-28-10 at this batch size (best of
    ``repeats`` after one warm-up)."""
    model = nets.build("wide_resnet", seed=0, depth=28, widen_factor=10).to(device).eval()
    x = torch.rand(batch, 3, 32, 32, device=device, requires_grad=True)

    def timed(backward: bool) -> float:
        best = math.inf
        for i in range(repeats + 1):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
            if backward:
                torch.autograd.grad(model(x).sum(), x)
            else:
                with torch.no_grad():
                    model(x)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            if i:
                best = min(best, time.perf_counter() - start)
        return best / batch

    return timed(False), timed(True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--n", type=int, default=8, help="images for the pass counts")
    parser.add_argument("--batch", type=int, default=50, help="batch size of the WRN timing")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--attacks", default=",".join(PROTOCOL), help="comma-separated attacks to count")
    args = parser.parse_args()
    passes = passes_per_image(args.device, args.n, args.attacks.split(","))
    fwd_s, fwd_bwd_s = seconds_per_pass(args.device, args.batch, args.repeats)
    bwd_s = fwd_bwd_s - fwd_s
    name = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else "CPU"
    times = f"forward {fwd_s * 1e3:.1f} ms/image, forward+backward {fwd_bwd_s * 1e3:.1f} ms/image"
    print(f"WideResNet-28-10 on {name} ({torch.get_num_threads()} threads), batch {args.batch}: {times}\n")
    print("| attack (3 jobs: p = 1, 2, inf) | forward / image | backward / image | s / image | "
          f"hours for {N_TEST:,} images |")  # fmt: skip
    print("|---|---|---|---|---|")
    total = 0.0
    for attack, (f, b) in passes.items():
        seconds = f * fwd_s + b * bwd_s
        total += seconds
        print(f"| {attack} | {f:,.0f} | {b:,.0f} | {seconds:,.1f} | {seconds * N_TEST / 3600:,.1f} |")
    print(f"| all attacks | | | {total:,.1f} | {total * N_TEST / 3600:,.1f} |")


if __name__ == "__main__":
    main()
