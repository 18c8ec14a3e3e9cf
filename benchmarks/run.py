"""Run every benchmark module (``benchmarks/bench_*.py``) and print its figures.

Each module defines ``main() -> list[dict]``: rows of {"benchmark", "figure", "value", "unit"}. Figures are
ratios measured in one run wherever possible (the machine is shared and noisy). Results are also written to
``benchmarks/results.json`` so the README figures can be refreshed from one file.

    python -m benchmarks.run            # all
    python -m benchmarks.run primal     # only bench_primal.py
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch


def row(benchmark: str, figure: str, value: float, unit: str) -> dict:
    """One benchmark figure as the harness prints and records it."""
    return {"benchmark": benchmark, "figure": figure, "value": float(value), "unit": unit}


def interleaved_best(fns: dict[str, Callable[[], object]], repeats: int = 5) -> dict[str, float]:
    """Best wall time of each function over ``repeats`` interleaved rounds (after one warm-up round), so
    that a load change on the shared machine affects all of them alike."""
    best = dict.fromkeys(fns, float("inf"))
    for round_ in range(repeats + 1):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            if round_:
                best[name] = min(best[name], time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> None:
    """Discover bench_* modules (optionally filtered by name) and run them in order."""
    wanted = set(argv if argv is not None else sys.argv[1:])
    here = Path(__file__).parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    rows: list[dict] = []
    for name in names:
        if wanted and name.removeprefix("bench_") not in wanted:
            continue
        print(f"## {name}", flush=True)
        start = time.perf_counter()
        module_rows = importlib.import_module(f"benchmarks.{name}").main()
        for row in module_rows:
            print(
                f"- {row['benchmark']}: {row['figure']} = {row['value']:.4g} {row.get('unit', '')}",
                flush=True,
            )
        print(f"({time.perf_counter() - start:.1f} s)\n", flush=True)
        rows.extend(module_rows)
    path = here / "results.json"
    if wanted and path.exists():  # a partial run replaces only its own benchmarks' rows
        ran = {r["benchmark"] for r in rows}
        rows = [r for r in json.loads(path.read_text())["rows"] if r["benchmark"] not in ran] + rows
    record = {
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cuda": torch.cuda.is_available(),
        },
        "rows": rows,
    }
    path.write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
