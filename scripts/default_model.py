"""Retrain the bundled default digits MLP with its published recipe and rewrite the shipped checkpoint.

    .venv/bin/python scripts/default_model.py          # about 2 s; writes src/wdrobust/weights/digits-mlp.*

The same model from the command line (the recipe of ``wdrobust.models``: widths 128,64, ReLU, the whole
train split, constant learning rate):

    wdrobust train --data digits --arch mlp --arch-option widths=128,64 --val-fraction 0 \
        --schedule constant --out digits-mlp.safetensors

Rewrite the shipped file only for an intended change of the default model: the demo's golden record
(tests/fixtures/demo_results.json) and the README's figures are computed from it and must be regenerated
with it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from wdrobust import nets
from wdrobust.models import DEFAULT_FILE, train_default_model

TARGET = Path(__file__).resolve().parents[1] / "src" / "wdrobust" / "weights" / DEFAULT_FILE


def main() -> None:
    """Train on one CPU thread (the recipe is deterministic on a given CPU) and save next to the package."""
    torch.set_num_threads(1)
    result = train_default_model(device="cpu")
    nets.save(result.model, TARGET, metadata=result.metadata)
    print(f"wrote {TARGET} ({100 * result.test_accuracy:.2f} % clean test accuracy)")


if __name__ == "__main__":
    main()
