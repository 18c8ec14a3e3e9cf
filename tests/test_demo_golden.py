"""The demo's results.json (``make demo``: ``wdrobust evaluate`` with every default) is the same as the
one recorded in tests/data/demo_results.json, timing fields, the cache path of the model and the package
versions aside. Numbers are compared to 1e-9 relative (the last bits of a float sum may move when code is
reorganised; any change of a bound shows far above that). Regenerate the record only for an intended
change of results, and say so in the commit."""

from __future__ import annotations

import json
import math
from pathlib import Path

from _cli import invoke, strip_timing

RECORD = Path(__file__).parent / "data" / "demo_results.json"


def _close(got, want, where="results"):
    """Assert got == want, floats to 1e-9 relative; ``where`` names the first difference."""
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
        assert isinstance(got, (int, float)) and math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12), (
            f"{where}: {got!r} != {want!r}"
        )
    else:
        assert got == want, f"{where}: {got!r} != {want!r}"


def test_demo_results_match_the_record(tmp_path, monkeypatch):
    monkeypatch.setenv("WDROBUST_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "demo"
    result = invoke("evaluate", "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    doc = strip_timing(json.loads((out / "results.json").read_text()))
    doc.pop("versions")
    doc["model"].pop("path")
    _close(doc, json.loads(RECORD.read_text()))
