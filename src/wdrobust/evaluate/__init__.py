"""Evaluation: attacks and certificates over a data set in batches, per-sample records in a SQLite store,
aggregation of every (eps, p, loss) through the primal solver (see docs/evaluate.md)."""

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
