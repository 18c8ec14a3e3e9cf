"""Export the images of VNN-LIB robustness properties as an image .npz for wdrobust (WDRO data).

    PYTHONPATH=src .venv/bin/python scripts/vnnlib_export.py BENCH/instances.csv --shape 3,32,32
        [--mean 0.4914,0.4822,0.4465 --std 0.2471,0.2435,0.2616] [--levels 255] --out cifar.npz

Inputs: an instances.csv (its distinct vnnlib files, in order) or .vnnlib[.gz] files. Each property must
be "some class j != y reaches the true class y" over a box B_inf(x, eps) cap [0, 1]^d in pixel space,
after undoing the input normalisation (x - mean) / std that the benchmark applied before the network
(--mean / --std; give none when the box is in pixel space, e.g. when the network normalises itself).
``data.vnnlib.robustness_instance`` recovers x, y and eps (the centre where unclipped, hi - eps where
clipped at 0, lo + eps where clipped at 1; --levels rounds x to the grey levels k / levels, 0 keeps
floats). Writes x_test (N, C, H, W) (uint8 with --levels 255, else float32 in [0, 1]), y_test (N,),
eps (N,) float64 and names (N,) (the vnnlib file names); ``--data FILE.npz --split test`` reads them.
Bad input: one line ``error: ...`` and exit code 2, nothing written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from wdrobust._atomic import atomic_write
from wdrobust.data.vnnlib import read_instances, read_vnnlib, robustness_instance


def _numbers(text: str | None) -> list[float] | None:
    return None if text is None else [float(t) for t in text.split(",") if t.strip()]


def _properties(paths: list[str]) -> list[Path]:
    """The vnnlib files named, or listed by instances.csv files, without repeats, in order."""
    out: list[Path] = []
    for p in map(Path, paths):
        files = [i.vnnlib for i in read_instances(p)] if p.suffix == ".csv" else [p]
        out.extend(f for f in files if f not in out)
    return out


def export(
    paths: list[str],
    shape: tuple[int, ...],
    mean: list[float] | None,
    std: list[float] | None,
    levels: int,
    out: Path,
) -> int:
    """Write the npz (module docstring); returns the number of images."""
    files = _properties(paths)
    found = []
    for f in files:
        prop = read_vnnlib(f)
        try:
            found.append(robustness_instance(prop, shape, mean, std, levels or None))
        except ValueError as exc:
            raise ValueError(f"{f}: {exc}") from None
    x = np.stack([x for x, _, _ in found])
    arrays = {
        "x_test": np.round(x * 255).astype(np.uint8) if levels == 255 else x.astype(np.float32),
        "y_test": np.array([y for _, y, _ in found], dtype=np.int64),
        "eps": np.array([e for _, _, e in found]),
        "names": np.array([f.name for f in files]),
    }
    atomic_write(out, lambda tmp: np.savez_compressed(tmp, **arrays))
    return len(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+", help="instances.csv or .vnnlib[.gz] files")
    parser.add_argument("--shape", required=True, help="image shape C,H,W, e.g. 1,28,28")
    parser.add_argument("--mean", default=None, help="per-channel mean of the normalisation to undo")
    parser.add_argument("--std", default=None, help="per-channel std of the normalisation to undo")
    parser.add_argument("--levels", type=int, default=255, help="grey levels of the pixels (0: none)")
    parser.add_argument("--out", required=True, type=Path, help="output .npz")
    args = parser.parse_args()
    try:
        shape = tuple(int(s) for s in args.shape.split(","))
        n = export(args.inputs, shape, _numbers(args.mean), _numbers(args.std), args.levels, args.out)
    except (ValueError, OSError) as exc:
        print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
        sys.exit(2)
    print(f"wrote {n} images to {args.out}")


if __name__ == "__main__":
    main()
