"""The demo's results.json (``make demo``: ``wdrobust evaluate`` with every default) is the one recorded in
tests/data/demo_results.json, timing fields, the checkpoint's path and the package versions aside; numbers
to 1e-4 relative or 1e-6 absolute, everything else (counts, names, the model's hash) exactly.

The demo evaluates the default model's shipped weights (``wdrobust.models``), the same bytes on every
machine; what still moves its figures is the rounding of torch's CPU kernels. Measured with
scripts/golden_spread.py (1 and 2 torch threads, oneDNN on and off; `pytest --torch-threads 2
--no-onednn` runs this test under those kernels): the largest move is SPREAD_NOTE. The tolerance is 100x
that; a change of a bound or of an attack shows far above it. Regenerate the record (``golden_spread.py
--write``) only for an intended change of results, and say so in the commit."""

from __future__ import annotations

import json
import math
from pathlib import Path

from _cli import invoke, strip_timing

RECORD = Path(__file__).parent / "data" / "demo_results.json"


def _close(got, want, where="results"):
    """Assert got == want, floats to 1e-4 relative or 1e-6 absolute; ``where`` names the first difference."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and set(got) == set(want), (
            f"{where}: keys {sorted(got)} != {sorted(want)}"
        )
        for k in want:
            _close(got[k], want[k], f"{where}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: {got!r} != {want!r}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _close(g, w, f"{where}[{i}]")
    elif isinstance(want, float) and not isinstance(got, bool):
        assert isinstance(got, (int, float)) and math.isclose(got, want, rel_tol=1e-4, abs_tol=1e-6), (
            f"{where}: {got!r} != {want!r}"
        )
    else:
        assert got == want, f"{where}: {got!r} != {want!r}"


def test_demo_results_match_the_record(tmp_path, torch_threads):
    out = tmp_path / "demo"
    result = invoke("evaluate", "--out", out, "--quiet", "--threads", torch_threads)
    assert result.exit_code == 0, result.output
    doc = strip_timing(json.loads((out / "results.json").read_text()))
    doc.pop("versions")
    record = json.loads(RECORD.read_text())
    doc["model"].pop("path")
    _close(doc, record)
