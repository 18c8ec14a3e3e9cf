"""wdrobust: Wasserstein distributional robustness of neural-network classifiers.

Lower bounds come from explicit adversarial distributions (attacks), upper bounds from certificates;
both go through one primal solver over per-sample growth functions (see DESIGN.md).
"""

from wdrobust.threat import ThreatModel

__version__ = "0.1.0"
__all__ = ["ThreatModel", "__version__"]
