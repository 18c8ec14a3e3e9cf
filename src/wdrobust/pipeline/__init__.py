"""The evaluation pipeline: attacks and certificates over a data set in batches, per-sample records in a
SQLite store, aggregation of every (eps, p, loss) through the primal solver (see docs/evaluate.md).

The one-call entry point from Python is ``wdrobust.evaluate`` (``wdrobust.api.evaluate``); the CLI's
``wdrobust evaluate`` builds an ``EvalConfig`` and calls ``run``.
"""

from wdrobust.pipeline.aggregate import Records, aggregate, load_records
from wdrobust.pipeline.config import EvalConfig, build_config, config_hash
from wdrobust.pipeline.runner import RunOutcome, run
from wdrobust.pipeline.store import STORE_NAME, Store

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
