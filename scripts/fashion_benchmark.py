"""The Fashion-MNIST benchmark of docs/fashion.md: two models trained by `wdrobust train`, evaluated by
`wdrobust evaluate`, tables printed as markdown.

    apt-get install dataset-fashion-mnist        # the standard idx files, as root
    .venv/bin/python scripts/fashion_benchmark.py [--root /usr/share/datasets/fashion-mnist] [--n 100]

Trains (when missing, with the CLI's defaults: 10 % validation split, cosine schedule, 5 epochs) an MLP
784-256-128-10 and a CNN (conv 16, conv 32, dense 100), both ReLU, into runs/models/ (the CNN's crown
with the cheap settings of configs/fashion-cnn-crown.toml); evaluates each on
the first N test images under the linf cost for eps in {0.01, 0.02} and p in {1, 2, inf} with the
attacks pgd, apgd, wda, wda++ and the certificates global, first-order, local, radius, crown, into
runs/fashion-<model>/ (resumable: a second call reuses the stored units), writes the RobustBench-style
record, and prints the tables of docs/fashion.md (accuracy band, CE band, seconds per sample per method).
Copies the plots into docs/fashion/<model>/.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

CLI = str(Path(sys.executable).with_name("wdrobust"))
MODELS = {
    "mlp": ["--arch", "mlp", "--widths", "256,128"],
    "cnn": ["--arch", "cnn", "--widths", "16,32", "--hidden", "100"],
}
#: Evaluation settings beyond EVAL per model: the CNN's crown runs with cheap settings (see the file).
CONFIGS = {"cnn": ["--config", "configs/fashion-cnn-crown.toml"]}
EVAL = ["--eps", "0.01,0.02", "--p", "1,2,inf", "--attacks", "pgd,apgd,wda,wda++",
        "--certificates", "global,first-order,local,radius,crown", "--batch-size", "50", "--keep-points",
        "--threads", "2", "--quiet"]  # fmt: skip


def run(args: list[str]) -> None:
    """Run one CLI command (its output shown); CalledProcessError when it fails."""
    subprocess.run([CLI, *args], check=True)


def tables(name: str, results: dict, train_line: str) -> str:
    """The markdown tables of one model."""
    n = results["n"]
    lines = [f"### {name}: {train_line}", "",
             "| eps | p | clean acc | certified acc | attacked acc | CE lower (attack) | CE upper (sound) |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for tm in results["threat_models"]:
        acc = tm["losses"]["zero_one"]["accuracy"]
        ce = tm["losses"]["ce"]
        ub = ce["best_sound_upper"]
        lines.append(
            f"| {tm['eps_text']} | {tm['p']} | {acc['clean']:.3f} | {acc['lower']:.3f} | {acc['upper']:.3f} "
            f"| {ce['lower']['best']['value']:.3f} | {ub['value']:.3g} ({ub['method']}) |"
        )
    lines += ["", "| method | kind | seconds per sample |", "|---|---|---|"]
    for method, m in results["methods"]["attacks"].items():
        lines.append(f"| {method} | attack ({m['jobs']} jobs together) | {m['seconds'] / n:.3f} |")
    for method, m in results["methods"]["certificates"].items():
        kind = "sound" if m["sound"] else "estimate"
        lines.append(f"| {method} | certificate, {kind} | {m['seconds'] / n:.3f} |")
    return "\n".join([*lines, ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--n", type=int, default=100)
    args = parser.parse_args()
    out = []
    for name, arch in MODELS.items():
        model = Path(f"runs/models/fashion-{name}.safetensors")
        if not model.exists():
            run(
                [
                    "train",
                    "--data",
                    "fashion-mnist",
                    "--root",
                    args.root,
                    *arch,
                    "--out",
                    str(model),
                    "--quiet",
                ]
            )
        meta = json.loads(model.with_suffix(".json").read_text())["metadata"]
        train_line = (
            f"{100 * meta['test_accuracy']:.2f} % clean test accuracy ({100 * meta['val_accuracy']:.2f} % "
            f"validation), trained in {meta['train_seconds']:.0f} s ({meta['train']['epochs']} epochs)"
        )
        run_dir = Path(f"runs/fashion-{name}")
        where = ["--data", "fashion-mnist", "--root", args.root, "--n", str(args.n)]
        run(["evaluate", "--model", str(model), *where, "--label", f"fashion-{name}",
                       "--out", str(run_dir), *EVAL, *CONFIGS.get(name, [])])  # fmt: skip
        run(["report", str(run_dir), "--format", "robustbench"])
        results = json.loads((run_dir / "results.json").read_text())
        units = results["run"]["seconds"]
        note = f"\n`wdrobust evaluate`: {units:.0f} s of unit time for {args.n} samples\n"
        out.append(tables(f"fashion-{name}", results, train_line) + note)
        target = Path("docs/fashion") / name
        target.mkdir(parents=True, exist_ok=True)
        for png in (run_dir / "plots").glob("*.png"):
            shutil.copy(png, target / png.name)
        shutil.copy(run_dir / "model_info.json", target / "model_info.json")
    print("\n".join(out))


if __name__ == "__main__":
    main()
