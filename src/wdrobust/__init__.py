"""wdrobust: Wasserstein distributional robustness of neural-network classifiers.

Lower bounds come from explicit adversarial distributions (attacks), upper bounds from certificates;
both go through one primal solver over per-sample growth functions (see docs/notation.md).

``wdrobust.evaluate(model, x, y, *, norm, eps, p, attacks, certificates, out=None, ...)`` evaluates any
nn.Module on tensors in [0, 1]: it is the function ``wdrobust.api.evaluate`` (imported on first use, so
that ``import wdrobust`` stays light); the pipeline behind it is the package ``wdrobust.pipeline``.
"""

import importlib
from typing import Any

from wdrobust.threat import ThreatModel

__version__ = "0.1.0"
__all__ = ["ThreatModel", "__version__", "evaluate"]


def __getattr__(name: str) -> Any:
    """``wdrobust.evaluate``: the function ``wdrobust.api.evaluate``, imported on first use."""
    if name == "evaluate":
        return importlib.import_module("wdrobust.api").evaluate
    raise AttributeError(f"module 'wdrobust' has no attribute {name!r}")
