"""Measure how far the demo's results move with the CPU kernels, to size the golden test's tolerance.

    .venv/bin/python scripts/golden_spread.py            # 4 demo runs, about 2 minutes on 2 cores
    .venv/bin/python scripts/golden_spread.py --write    # also rewrite tests/data/demo_results.json

Runs `wdrobust evaluate` (the demo: shipped default model, every default) with 1 and 2 torch threads, each
with oneDNN (torch.backends.mkldnn) on and off, and prints, for every run against the first and against
the recorded golden, the largest relative and absolute difference over the numbers of results.json
(timings, paths, versions aside; the comparison of tests/test_demo_golden.py) and whether every count is
equal. --write records the first run (1 thread, oneDNN on) as the new golden: only for an intended change
of results, and say so in the commit.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "tests" / "data" / "demo_results.json"
#: (torch threads, oneDNN enabled) of each run; the first is the golden's configuration.
RUNS = ((1, True), (2, True), (1, False), (2, False))
#: results.json keys that differ between runs by design, anywhere (timings), and at the top / in "model"
#: (package versions, the checkpoint's path).
TIMING = {"seconds", "run"}
LAUNCH = "import sys, torch; torch.backends.mkldnn.enabled = sys.argv.pop(1) == '1'; " \
    "from wdrobust.cli import main; sys.argv[0] = 'wdrobust'; main()"  # fmt: skip


def demo(out: Path, threads: int, onednn: bool) -> dict:
    """results.json of one demo run, without the volatile fields."""
    cmd = [sys.executable, "-c", LAUNCH, "1" if onednn else "0", "evaluate", "--threads", str(threads),
           "--out", str(out), "--quiet"]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True)
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
        if diff > 1e-6:  # relative moves of numbers at the absolute floor of the comparison do not count
            acc["rel"] = max(acc["rel"], diff / max(abs(want), 1e-300))
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
        for k, (threads, onednn) in enumerate(RUNS):
            docs.append(demo(Path(tmp) / f"run{k}", threads, onednn))
            base = spread(docs[-1], docs[0], {"rel": 0.0, "abs": 0.0, "other": 0})
            gold = spread(docs[-1], record, {"rel": 0.0, "abs": 0.0, "other": 0})
            print(f"threads {threads}, oneDNN {'on' if onednn else 'off'}: vs first run {_fmt(base)}; "
                  f"vs golden {_fmt(gold)}", flush=True)  # fmt: skip
    if args.write:
        RECORD.write_text(json.dumps(docs[0], indent=1, sort_keys=True) + "\n")
        print(f"wrote {RECORD}")


if __name__ == "__main__":
    main()
