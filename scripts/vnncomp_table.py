"""Compare `wdrobust verify --instances` results with the published VNN-COMP verdicts (markdown table).

    B=../shared/benchmarks/vnncomp
    PYTHONPATH=src .venv/bin/python scripts/vnncomp_table.py $B/2021_mnistfc=mnistfc.csv $B/2023_vit=vit.csv

Each argument is BENCH_FOLDER=RESULTS_CSV: a benchmark folder (its verdicts.csv: every tool's
``RESULT:seconds`` and the sat_tools / unsat_tools lists) and the results CSV of `wdrobust verify
--instances` on its instances.csv. Per set, on the instances the CSV holds: our sat / unsat / other
counts, a-b-CROWN's sat / unsat / other on the same instances, and two soundness checks: our unsat where
some tool found a counterexample (must be 0), our sat (re-checked in float64 by verify) where some tool
said unsat (a tool disagreeing with a checked counterexample). Bad input: one line ``error: ...``, exit 2.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

REFERENCE = "a-b-CROWN"
#: Its column in verdicts.csv (VNN-COMP 2021, 2023).
REFERENCE_COLUMNS = ("a-b-CROWN", "alpha_beta_crown")
COLUMNS = (
    "set", "run", "sat", "unsat", "unknown/timeout", f"{REFERENCE} sat", f"{REFERENCE} unsat",
    f"{REFERENCE} other", "our unsat vs a SAT", "our sat vs an UNSAT",
)  # fmt: skip


def key(onnx: str, vnnlib: str) -> tuple[str, str]:
    """The file names without folders and .gz, as verdicts.csv writes them."""
    return Path(onnx).name.removesuffix(".gz"), Path(vnnlib).name.removesuffix(".gz")


def verdicts(folder: Path) -> dict[tuple[str, str], dict[str, str]]:
    with (folder / "verdicts.csv").open(newline="") as f:
        return {key(r["onnx"], r["vnnlib"]): r for r in csv.DictReader(f)}


def row(folder: Path, results: Path) -> list[str]:
    """The table row of one set (see the module docstring)."""
    published = verdicts(folder)
    with results.open(newline="") as f:
        ours = {key(r["onnx"], r["vnnlib"]): r["result"] for r in csv.DictReader(f)}
    missing = sorted(set(ours) - set(published))
    if missing:
        raise ValueError(f"{results}: {missing[0]} is not in {folder / 'verdicts.csv'}")

    column = next((c for c in REFERENCE_COLUMNS if c in next(iter(published.values()))), None)
    if column is None:
        raise ValueError(f"{folder / 'verdicts.csv'} has no {REFERENCE} column")

    def reference(k: tuple[str, str]) -> str:
        return published[k][column].split(":")[0].lower()

    counts = [
        len(ours),
        sum(r == "sat" for r in ours.values()),
        sum(r == "unsat" for r in ours.values()),
        sum(r not in ("sat", "unsat") for r in ours.values()),
        sum(reference(k) == "sat" for k in ours),
        sum(reference(k) == "unsat" for k in ours),
        sum(reference(k) not in ("sat", "unsat") for k in ours),
        sum(r == "unsat" and bool(published[k]["sat_tools"]) for k, r in ours.items()),
        sum(r == "sat" and bool(published[k]["unsat_tools"]) for k, r in ours.items()),
    ]
    return [folder.name, *map(str, counts)]


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: vnncomp_table.py BENCH_FOLDER=RESULTS_CSV ...", file=sys.stderr)
        return 2
    try:
        rows = []
        for arg in argv:
            folder, sep, results = arg.partition("=")
            if not sep:
                raise ValueError(f"expected BENCH_FOLDER=RESULTS_CSV, got {arg!r}")
            rows.append(row(Path(folder), Path(results)))
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}".splitlines()[0], file=sys.stderr)
        return 2
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for r in rows:
        print("| " + " | ".join(r) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
