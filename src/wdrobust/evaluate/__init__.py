"""Evaluation: attacks and certificates over a data set in batches, per-sample records in a SQLite store,
aggregation of every (eps, p, loss) through the primal solver (see docs/evaluate.md).

The package is also callable: ``wdrobust.evaluate(model, x, y, *, norm, eps, p, attacks, certificates,
out=None, ...)`` is ``wdrobust.api.evaluate`` (any nn.Module and tensors; returns the typed results).
"""

import sys
import types
from typing import Any

from wdrobust.evaluate.aggregate import Records, aggregate, load_records
from wdrobust.evaluate.config import EvalConfig, build_config, config_hash
from wdrobust.evaluate.runner import RunOutcome, run
from wdrobust.evaluate.store import STORE_NAME, Store

__all__ = [
    "STORE_NAME",
    "EvalConfig",
    "Records",
    "RunOutcome",
    "Store",
    "aggregate",
    "build_config",
    "config_hash",
    "load_records",
    "run",
]


class _CallableModule(types.ModuleType):
    """The module type of this package: calling it calls ``wdrobust.api.evaluate``."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from wdrobust.api import evaluate  # the entry point that uses this package (imported on use)

        return evaluate(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
