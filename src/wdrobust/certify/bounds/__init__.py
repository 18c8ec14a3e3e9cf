"""The sound bound engine: interval propagation and interval backward passes over a torch.fx graph.

One module per family of operations (linear, norm, shape, pool, activations) registers its bound rules;
``graph`` traces a model and dispatches; ``lipschitz`` turns bounds into per-class margin constants.
"""

from wdrobust.certify.bounds.graph import BoundGraph, Bounds
from wdrobust.certify.bounds.lipschitz import (
    lipschitz_rows,
    margin_lipschitz,
    margin_upper_rows,
    other_classes,
    stable_rows,
)

__all__ = [
    "BoundGraph",
    "Bounds",
    "lipschitz_rows",
    "margin_lipschitz",
    "margin_upper_rows",
    "other_classes",
    "stable_rows",
]
