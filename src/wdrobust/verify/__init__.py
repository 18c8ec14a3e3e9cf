"""Verification of VNN-LIB properties on ONNX networks (VNN-COMP instances): counterexample search, then
sound deciders cheapest first; one instance (``verify_file``) or a benchmark (``run_benchmark``).

Above certify and attacks on the import ladder (docs/architecture.md)."""

from __future__ import annotations

from pathlib import Path

from wdrobust import nets
from wdrobust.data.vnnlib import read_vnnlib
from wdrobust.verify.benchmark import RESULT_COLUMNS, run_benchmark
from wdrobust.verify.deciders import DECIDERS, BabDecider, BoundDecider, Decider, Decision
from wdrobust.verify.instance import RESULTS, Verdict, verify_problem
from wdrobust.verify.problem import Network, Problem


def verify_file(model: str | Path, prop: str | Path, timeout: float) -> Verdict:
    """The verdict on one network file (.onnx or .onnx.gz) and VNN-LIB file."""
    problem = Problem(Network(nets.load(model)), read_vnnlib(prop))
    return verify_problem(problem, timeout)


__all__ = [
    "DECIDERS",
    "RESULTS",
    "RESULT_COLUMNS",
    "BabDecider",
    "BoundDecider",
    "Decider",
    "Decision",
    "Network",
    "Problem",
    "Verdict",
    "run_benchmark",
    "verify_file",
    "verify_problem",
]
