"""The demo's results.json (``make demo``: ``wdrobust evaluate`` with every default) is the one recorded in
tests/fixtures/demo_results.json, timing fields, the checkpoint's path and the package versions aside; numbers
to REL_TOL relative or ABS_TOL absolute, everything else (counts, names, the model's hash) exactly.

The demo evaluates the default model's shipped weights (``wdrobust.models``), the same bytes on every
machine; what still moves its figures is the rounding of torch's CPU kernels, which the attacks' sign steps
amplify. Measured with scripts/golden_spread.py on an AVX2 machine against its own first run: 2 torch
threads moved numbers by at most 2.7e-9 relative (1.1e-9 absolute), oneDNN off by nothing, and the kernels
of a processor without AVX (ATen's scalar kernels, MKL at SSE4.2, oneDNN at SSE4.1) by 2.6e-4 relative
(1.3e-3 absolute, on numbers of magnitude >= 0.01), every count equal. REL_TOL is about 4x that largest
move; a change of a bound or an attack, or one sample of 450 changing its status, shows above it. `pytest
--torch-threads 2 --no-onednn` runs this test under those settings. Regenerate the record
(``golden_spread.py --write``) only for an intended change of results, and say so in the commit."""

from __future__ import annotations

import json
import math

import pytest
from _cli import invoke, strip_timing
from _paths import FIXTURES

RECORD = FIXTURES / "demo_results.json"
#: Tolerances of the numbers (module docstring: the measured spread over CPU kernels is 2.6e-4 relative).
REL_TOL, ABS_TOL = 1e-3, 1e-4


def _close(got, want, where="results"):
    """Assert got == want, floats to REL_TOL relative or ABS_TOL absolute; ``where`` names the first
    difference."""
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
        assert isinstance(got, (int, float)) and math.isclose(got, want, rel_tol=REL_TOL, abs_tol=ABS_TOL), (
            f"{where}: {got!r} != {want!r}"
        )
    else:
        assert got == want, f"{where}: {got!r} != {want!r}"


@pytest.mark.slow
def test_demo_results_match_the_record(tmp_path, torch_threads):
    out = tmp_path / "demo"
    result = invoke("evaluate", "--out", out, "--quiet", "--threads", torch_threads)
    assert result.exit_code == 0, result.output
    doc = strip_timing(json.loads((out / "results.json").read_text()))
    doc.pop("versions")
    record = json.loads(RECORD.read_text())
    doc["model"].pop("path")
    _close(doc, record)
