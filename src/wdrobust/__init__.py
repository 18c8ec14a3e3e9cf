"""wdrobust: Wasserstein distributional robustness of neural-network classifiers.

Lower bounds come from explicit adversarial distributions (attacks), upper bounds from certificates;
both go through one primal solver over per-sample growth functions (see docs/notation.md).

``wdrobust.evaluate(model, x, y, *, norm, eps, p, attacks, certificates, out=None, ...)`` evaluates any
nn.Module on tensors in [0, 1] (``wdrobust.api.evaluate``; ``wdrobust.evaluate`` is also the package of
the pipeline, imported on first use).
"""

import importlib
from typing import Any

from wdrobust.threat import ThreatModel

__version__ = "0.1.0"
__all__ = ["ThreatModel", "__version__", "evaluate"]


def __getattr__(name: str) -> Any:
    """``wdrobust.evaluate`` (the callable evaluation package) is imported on first use."""
    if name == "evaluate":
        return importlib.import_module("wdrobust.evaluate")
    raise AttributeError(f"module 'wdrobust' has no attribute {name!r}")
