"""Measure how far the demo's results move with the CPU kernels, to size the golden test's tolerance.

    .venv/bin/python scripts/golden_spread.py            # 4 demo runs, about 3 minutes on 2 quiet cores
    .venv/bin/python scripts/golden_spread.py --write    # also rewrite tests/fixtures/demo_results.json

Runs `wdrobust evaluate` (the demo: shipped default model, every default) with 1 and 2 torch threads, with
oneDNN (torch.backends.mkldnn) off, and with the CPU kernels of an older processor (ATen's scalar kernels,
MKL capped at SSE4.2, oneDNN at SSE4.1: what a machine without AVX runs), and prints, for
every run against the first and against the recorded golden, the largest relative difference (numbers
of magnitude >= 0.01) and absolute difference over the numbers of results.json (timings, paths, versions
aside; the comparison of tests/test_demo_golden.py) and how many other leaves (counts, names) differ.
--write records the first run (1 thread, oneDNN on) as the new golden: only for an intended change of
results, and say so in the commit.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "tests" / "fixtures" / "demo_results.json"
#: (torch threads, oneDNN enabled, kernels) of each run; the first is the golden's configuration.
RUNS = ((1, True, "native"), (2, True, "native"), (1, False, "native"), (1, True, "sse"))
#: Environment of each kernel choice: this CPU's best, or those of a processor without AVX.
KERNELS = {
    "native": {},
    "sse": {"ATEN_CPU_CAPABILITY": "default", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
            "ONEDNN_MAX_CPU_ISA": "SSE41"},
}
#: results.json keys that differ between runs by design, anywhere (timings), and at the top / in "model"
#: (package versions, the checkpoint's path).
TIMING = {"seconds", "run"}
LAUNCH = "import sys, torch; torch.backends.mkldnn.enabled = sys.argv.pop(1) == '1'; " \
    "from wdrobust.cli import main; sys.argv[0] = 'wdrobust'; main()"  # fmt: skip


def demo(out: Path, threads: int, onednn: bool, kernels: str) -> dict:
    """results.json of one demo run, without the volatile fields."""
    cmd = [sys.executable, "-c", LAUNCH, "1" if onednn else "0", "evaluate", "--threads", str(threads),
           "--out", str(out), "--quiet"]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, **KERNELS[kernels]})
    return strip(json.loads((out / "results.json").read_text()))


def strip(value):
    """A results document without its timings, package versions and checkpoint path."""
    doc = _untimed(value)
    doc.pop("versions", None)
    doc["model"].pop("path", None)
    return doc


def _untimed(value):
    if isinstance(value, dict):
        return {k: _untimed(v) for k, v in value.items() if k not in TIMING}
    if isinstance(value, list):
        return [_untimed(v) for v in value]
    return value


def spread(got, want, acc: dict) -> dict:
    """Accumulate the largest relative / absolute float difference and count mismatches of other leaves."""
    if isinstance(want, dict):
        for k in want:
            spread(got.get(k) if isinstance(got, dict) else None, want[k], acc)
    elif isinstance(want, list):
        for g, w in zip(got if isinstance(got, list) else [], want, strict=False):
            spread(g, w, acc)
    elif isinstance(want, float) and isinstance(got, (int, float)) and not isinstance(got, bool):
        diff = abs(got - want)
        acc["abs"] = max(acc["abs"], diff)
        if abs(want) >= 0.01:
            acc["rel"] = max(acc["rel"], diff / abs(want))
    elif got != want:
        acc["other"] += 1
    return acc


def _fmt(acc: dict) -> str:
    return f"max rel {acc['rel']:.2e}, max abs {acc['abs']:.2e}, other leaves differing: {acc['other']}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="record the first run as the golden")
    args = parser.parse_args()
    record = strip(json.loads(RECORD.read_text()))
    docs = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, (threads, onednn, kernels) in enumerate(RUNS):
            docs.append(demo(Path(tmp) / f"run{k}", threads, onednn, kernels))
            base = spread(docs[-1], docs[0], {"rel": 0.0, "abs": 0.0, "other": 0})
            gold = spread(docs[-1], record, {"rel": 0.0, "abs": 0.0, "other": 0})
            setting = f"threads {threads}, oneDNN {'on' if onednn else 'off'}, {kernels} kernels"
            print(f"{setting}: vs first run {_fmt(base)}; vs golden {_fmt(gold)}", flush=True)
    if args.write:
        RECORD.write_text(json.dumps(docs[0], indent=1, sort_keys=True) + "\n")
        print(f"wrote {RECORD}")


if __name__ == "__main__":
    main()
