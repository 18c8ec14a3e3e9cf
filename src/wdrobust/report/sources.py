"""What the report writers read from a run folder: its typed results, its per-sample records, (on first
use) the candidate points its attack jobs stored and, when they can still be loaded unchanged, the model
and the evaluated samples (for the clean images and predicted classes of the worst-case plot)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from wdrobust.data.indices import read_indices
from wdrobust.pipeline.aggregate import Records, load_records
from wdrobust.pipeline.document import Results
from wdrobust.pipeline.inputs import Inputs, evaluation_inputs
from wdrobust.pipeline.jobs.plan import Layout
from wdrobust.pipeline.store import STORE_NAME, Store
from wdrobust.primal.curves import pad_columns
from wdrobust.report.results import build_results


@dataclass
class Sources:
    """A run folder, its records (per-sample arrays, for the plots) and its results (``build_results``,
    with the run folder)."""

    run_dir: Path
    records: Records
    results: Results
    _points: dict[str, np.ndarray] | None = field(default=None, init=False, repr=False)

    @classmethod
    def load(cls, run_dir: str | Path) -> Sources:
        """Aggregate the store of ``run_dir``; FileNotFoundError when the folder holds no run."""
        run_dir = Path(run_dir)
        with _store(run_dir) as store:
            records = load_records(store)
        return cls(run_dir, records, dataclasses.replace(build_results(records), run_dir=run_dir))

    def inputs(self) -> Inputs | None:
        """The run's model and samples loaded again from its configuration (CPU), or None when they cannot
        be: a model given from Python, a checkpoint or data file gone, or either changed since the run
        (SHA-256 recorded in the store)."""
        try:
            inputs = evaluation_inputs(self.records.config, torch.device("cpu"))
        except (ValueError, OSError):
            return None
        facts = self.records.facts
        same = all(facts.get(k) == inputs.facts[k] for k in ("model_sha256", "data_sha256"))
        return inputs if same else None

    def indices(self) -> np.ndarray:
        """The evaluated samples' indices in their split (N,): offset, offset + 1, ... or the configured
        indices file (ValueError when it is gone)."""
        cfg = self.records.config
        if cfg.indices is None:
            return cfg.offset + np.arange(self.records.n)
        return np.asarray(read_indices(cfg.indices))

    def points(self) -> dict[str, np.ndarray]:
        """Every attack job's candidate points (N, M, *S), NaN-padded to the columns of its record, when the
        run stores them ({} otherwise); read from the store on the first call."""
        if self._points is None:
            self._points = {}
            records = self.records
            if records.config.stores_points:
                layout = Layout(records.n, records.config.batch_size)  # attacks are never cut
                with _store(self.run_dir) as store:
                    for job, rec in records.attacks.items():
                        parts = [b.get("points") for b in store.job_arrays(job, layout.units(job))]
                        if all(p is not None for p in parts):
                            self._points[job] = np.concatenate(
                                [pad_columns(p, rec.t.shape[1], np.nan) for p in parts]
                            )
        return self._points


def _store(run_dir: Path) -> Store:
    """The run folder's store; FileNotFoundError naming the folder when there is none."""
    store_path = run_dir / STORE_NAME
    if not store_path.is_file():
        raise FileNotFoundError(f"no wdrobust run in {run_dir} (missing {STORE_NAME})")
    return Store(store_path)
