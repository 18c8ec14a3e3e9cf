"""The per-sample table of a run (``wdrobust report RUN --format csv``): one row per evaluated sample.

Columns: ``index`` (the sample's index in the split), ``label`` (y_i), ``clean_correct`` (1 when
argmax f(x_i) = y_i, else 0), ``flip_distance`` (d_i: the distance of the closest misclassified point any
attack found, 0 for a misclassified sample, inf when none was found; empty without attacks),
``certified_radius`` (r_i: the largest radius certified by a sound certificate, no flip strictly inside
it; empty without one), and per threat model at p = inf (where one sample's status is defined: the
W_inf ball moves every sample by at most eps) a column ``status_eps_<eps>_p_inf``: ``attacked`` (the
sample is misclassified or d_i <= eps), ``certified`` (r_i > eps) or ``open`` (neither). At finite p
the adversary spends the budget on some samples only, so no per-sample status exists there.
"""

from __future__ import annotations

import csv
import io
import math

import numpy as np

from wdrobust.pipeline.aggregate import Records, best_flip_distances
from wdrobust.report.numbers import number

#: The file the csv format writes into the run folder.
SAMPLES_NAME = "samples.csv"
#: The statuses of a sample at (eps, p = inf).
ATTACKED, CERTIFIED, OPEN = "attacked", "certified", "open"


def best_certified_radius(records: Records) -> np.ndarray | None:
    """Per sample the largest certified radius of the sound certificates (N,); None without one."""
    certs = records.certificates.values()
    radii = [r.certified_radius for r in certs if r.sound and r.certified_radius is not None]
    return np.max(np.stack(radii), axis=0) if radii else None


def statuses(
    eps: float, correct: np.ndarray, flips: np.ndarray | None, radii: np.ndarray | None
) -> list[str]:
    """Per sample its status at (eps, p = inf) (module docstring); correct, flips, radii: (N,)."""
    attacked = ~correct if flips is None else ~correct | (flips <= eps)
    certified = np.zeros_like(correct) if radii is None else correct & (radii > eps)
    return [ATTACKED if a else CERTIFIED if c else OPEN for a, c in zip(attacked, certified, strict=True)]


def _distance(value: float) -> str:
    """A distance in full precision (repr), inf spelled inf."""
    return number(value) if math.isinf(value) else repr(float(value))


def samples_csv(records: Records, index: np.ndarray) -> str:
    """The CSV text of the per-sample table; index: (N,) the samples' indices in the split."""
    flips, radii = best_flip_distances(records), best_certified_radius(records)
    cfg = records.config
    at_inf = list(zip(cfg.eps, cfg.eps_values, strict=True)) if math.inf in cfg.p_values else []
    header = ["index", "label", "clean_correct", "flip_distance", "certified_radius"]
    header += [f"status_eps_{text}_p_inf" for text, _ in at_inf]
    columns = [
        [str(int(i)) for i in index],
        [str(int(v)) for v in records.y],
        [str(int(c)) for c in records.correct],
        [""] * records.n if flips is None else [_distance(v) for v in flips],
        [""] * records.n if radii is None else [_distance(v) for v in radii],
        *(statuses(value, records.correct, flips, radii) for _, value in at_inf),
    ]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(zip(*columns, strict=True))
    return out.getvalue()
