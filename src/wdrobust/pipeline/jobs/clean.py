"""The ``clean`` job: clean losses and correctness of every sample (one forward pass).

Arrays: index, y, correct, loss.<loss>.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from wdrobust.losses import all_losses
from wdrobust.pipeline.jobs.base import Job, UnitOutput, UnitTask


@dataclass(frozen=True)
class CleanJob(Job):
    """The clean pass: l(x_i, y_i) for every configured loss, the labels and argmax f(x_i) == y_i."""

    kind = "clean"
    method: str = "clean"

    @property
    def key(self) -> str:
        return "clean"

    def spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "method": self.method}

    def run(self, task: UnitTask) -> UnitOutput:
        x, y = task.samples()
        with torch.no_grad():
            z = task.inputs.model(x)
        arrays = {f"loss.{k}": v.cpu().double().numpy() for k, v in all_losses(z, y, task.cfg.losses).items()}
        arrays.update(
            index=np.arange(task.sl.start, task.sl.stop),
            y=y.cpu().numpy(),
            correct=(z.argmax(dim=1) == y).cpu().numpy(),
        )
        return arrays, {"forward_passes": int(x.shape[0])}
