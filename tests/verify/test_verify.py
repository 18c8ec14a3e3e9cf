"""`wdrobust verify` (wdrobust.verify): self-made ONNX nets and VNN-LIB properties; sat re-checked, unsat
on an easy box, the result format, the resumable results CSV, one-line errors; and a few of the shared
VNN-COMP instances against the published verdicts (skipped without them)."""

from __future__ import annotations

import csv
import io
import re
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from _certify_brute import tiny_net
from _cli import invoke, one_line_error
from _paths import ROOT
from torch import nn

from wdrobust import nets
from wdrobust.attacks.box_search import box_search
from wdrobust.certify.bab.search import BabOptions
from wdrobust.data.vnnlib import Property, read_instances, read_vnnlib
from wdrobust.verify import (
    DECIDERS,
    BabDecider,
    Decision,
    Network,
    Problem,
    verify_file,
    verify_problem,
)  # fmt: skip

pytest.importorskip("onnx")


def vnnlib(n_in: int, box: list[tuple[float, float]], *output_asserts: str) -> str:
    """A VNN-LIB text: n_in inputs, two outputs, the box and the output assertions."""
    lines = [f"(declare-const X_{i} Real)" for i in range(n_in)] + ["(declare-const Y_0 Real)"]
    lines += ["(declare-const Y_1 Real)"] if n_in == 2 else []
    for i, (lo, hi) in enumerate(box):
        lines += [f"(assert (>= X_{i} {lo}))", f"(assert (<= X_{i} {hi}))"]
    return "\n".join(lines + [f"(assert {a})" for a in output_asserts]) + "\n"


#: y0 >= y1 is a counterexample: on this box (x1 in [0.5, 3]) x = (1, 0.5) is one.
SAT = vnnlib(2, [(0, 1), (0.5, 3)], "(>= Y_0 Y_1)")
#: Here y0 = x0 <= 1 < 2 <= x1 = y1, and y0 < 5: no counterexample (the box lies outside [0, 1]^2).
UNSAT = vnnlib(2, [(0, 1), (2, 3)], "(or (and (>= Y_0 Y_1)) (and (>= Y_0 5)))")


def identity_relu_net() -> nn.Module:
    """y = relu(x) - relu(-x) = x on R^2, through a ReLU layer."""
    net = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 2))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0], [-1, 0], [0, 1], [0, -1]]))
        net[0].bias.zero_()
        net[2].weight.copy_(torch.tensor([[1.0, -1, 0, 0], [0, 0, 1, -1]]))
        net[2].bias.zero_()
    return net.eval()


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """net.onnx, sat.vnnlib, unsat.vnnlib and instances.csv (both properties) in tmp_path."""
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            identity_relu_net(), (torch.rand(1, 2),), f, dynamo=False, input_names=["x"], output_names=["y"],
            dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
        )  # fmt: skip
    (tmp_path / "net.onnx").write_bytes(f.getvalue())
    (tmp_path / "sat.vnnlib").write_text(SAT)
    (tmp_path / "unsat.vnnlib").write_text(UNSAT)
    (tmp_path / "instances.csv").write_text("net.onnx,sat.vnnlib,5\nnet.onnx,unsat.vnnlib,5\n")
    return tmp_path


def assignment(text: str) -> dict[str, float]:
    return {k: float(v) for k, v in re.findall(r"\((\w+) (\S+?)\)", text)}


def test_sat_is_found_rechecked_and_written_in_the_competitions_format(files: Path) -> None:
    verdict = verify_file(files / "net.onnx", files / "sat.vnnlib", timeout=5)
    assert verdict.result == "sat" and verdict.by == "attack"
    text = verdict.text()
    assert text.startswith("sat\n((X_0 ") and text.endswith("))\n")
    values = assignment(text)
    x = np.array([values["X_0"], values["X_1"]])
    assert 0 <= x[0] <= 1 and 0.5 <= x[1] <= 3 and values["Y_0"] >= values["Y_1"]
    np.testing.assert_allclose([values["Y_0"], values["Y_1"]], x, atol=1e-12)  # y = x, re-checked


def test_unsat_is_proved_on_a_box_outside_the_unit_cube(files: Path) -> None:
    verdict = verify_file(files / "net.onnx", files / "unsat.vnnlib", timeout=5)
    assert (verdict.result, verdict.text()) == ("unsat", "unsat\n")
    assert verdict.by in {d.name for d in DECIDERS}


def test_a_candidate_that_fails_the_float64_recheck_is_not_a_counterexample(files: Path) -> None:
    problem = Problem(Network(nets.load(files / "net.onnx")), read_vnnlib(files / "sat.vnnlib"))
    assert problem.holds(np.array([1.0, 0.5])) and not problem.holds(np.array([0.5, 1.0]))
    assert not problem.holds(np.array([1.0, 0.4]))  # outside the box


def test_without_a_decider_an_unsat_property_stays_unknown(files: Path) -> None:
    problem = Problem(Network(nets.load(files / "net.onnx")), read_vnnlib(files / "unsat.vnnlib"))
    assert verify_problem(problem, 0.2, deciders=()).result == "unknown"


def test_the_cli_prints_and_writes_the_result(files: Path) -> None:
    out = files / "result.txt"
    result = invoke("verify", files / "net.onnx", files / "unsat.vnnlib", "--timeout", 5, "--out", out)
    assert result.exit_code == 0, result.output
    assert result.output == "unsat\n" and out.read_text() == "unsat\n"


def test_instances_write_a_results_csv_that_resumes(files: Path) -> None:
    out = files / "results.csv"
    first = invoke("verify", "--instances", files / "instances.csv", "--timeout", 5, "--out", out)
    assert first.exit_code == 0, first.output
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["onnx", "vnnlib", "result", "seconds"]
    assert [r[:3] for r in rows[1:]] == [
        ["net.onnx", "sat.vnnlib", "sat"],
        ["net.onnx", "unsat.vnnlib", "unsat"],
    ]
    again = invoke("verify", "--instances", files / "instances.csv", "--out", out)
    assert again.output.strip() == "every instance was already done"
    out.write_text("\n".join(",".join(r) for r in rows[:2]) + "\n")  # drop the unsat row
    third = invoke("verify", "--instances", files / "instances.csv", "--out", out)
    assert "unsat.vnnlib unsat" in third.output and "sat.vnnlib sat" not in third.output
    assert len(list(csv.reader(out.open()))) == 3


def test_bad_input_is_one_line(files: Path) -> None:
    one_line_error(invoke("verify", files / "missing.onnx", files / "sat.vnnlib"), "missing.onnx")
    one_line_error(invoke("verify", files / "sat.vnnlib", files / "sat.vnnlib"), "ONNX")
    bad = files / "bad.vnnlib"
    bad.write_text(vnnlib(2, [(0, 1), (0, 1)], "(< Y_0 1)"))
    one_line_error(invoke("verify", files / "net.onnx", bad))
    one_line_error(invoke("verify"), "MODEL PROPERTY")
    one_line_error(invoke("verify", "--instances", files / "instances.csv"), "--out")
    wide = files / "wide.vnnlib"
    wide.write_text(vnnlib(1, [(0, 1)], "(>= Y_0 0)"))
    one_line_error(invoke("verify", files / "net.onnx", wide), "inputs")
    notcsv = files / "other.csv"
    notcsv.write_text("a,b\n")
    one_line_error(invoke("verify", "--instances", files / "instances.csv", "--out", notcsv), "results CSV")


SHARED = next((p for p in (Path("/work/shared"), ROOT.parent / "shared") if p.is_dir()), None)


@pytest.mark.skipif(SHARED is None, reason="shared/benchmarks/vnncomp is absent")
@pytest.mark.slow
def test_shared_mnistfc_instances_agree_with_the_published_verdicts() -> None:
    """A few mnistfc instances (1 s each, the cheap deciders): every sat re-checks, and no unsat where
    some tool found a counterexample."""
    bench = SHARED / "benchmarks" / "vnncomp" / "2021_mnistfc"
    sat_tools = {
        (r["onnx"], r["vnnlib"]): r["sat_tools"] for r in csv.DictReader((bench / "verdicts.csv").open())
    }
    rows = read_instances(bench / "instances.csv")[:4]
    net = Network(nets.load(rows[0].onnx))
    for inst in rows:
        problem = Problem(net, read_vnnlib(inst.vnnlib))
        verdict = verify_problem(problem, 1.0, deciders=DECIDERS[:3])
        key = (inst.onnx.name.removesuffix(".gz"), inst.vnnlib.name.removesuffix(".gz"))
        if verdict.result == "sat":
            assert problem.holds(verdict.x)
        if verdict.result == "unsat":
            assert not sat_tools[key], key


def test_box_search_handles_disjuncts_of_different_sizes() -> None:
    """Disjunct 0 (y0 <= -1, infeasible on the box) and disjunct 1 (two rows: y0 >= 0.8 and y1 <= 0.1):
    the search returns a point of disjunct 1."""
    net = identity_relu_net()
    lo, hi = torch.zeros(2), torch.ones(2)
    disjuncts = [
        (torch.tensor([[1.0, 0.0]]), torch.tensor([1.0])),
        (torch.tensor([[-1.0, 0.0], [0.0, 1.0]]), torch.tensor([0.8, -0.1])),
    ]
    found = box_search(net, lo, hi, disjuncts, generator=torch.Generator().manual_seed(0))
    assert found.disjunct == 1 and found.violation < 0
    assert found.x[0] >= 0.8 and found.x[1] <= 0.1 and (found.x >= lo).all() and (found.x <= hi).all()


def test_instances_with_absolute_paths(files: Path, tmp_path: Path) -> None:
    """An instances.csv elsewhere naming its files by absolute path runs, and its rows keep those names."""
    listed = tmp_path / "elsewhere" / "instances.csv"
    listed.parent.mkdir()
    listed.write_text(f"{files / 'net.onnx'},{files / 'unsat.vnnlib'},5\n")
    out = tmp_path / "results.csv"
    result = invoke("verify", "--instances", listed, "--out", out)
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(out.open()))
    assert [r[:3] for r in rows[1:]] == [[str(files / "net.onnx"), str(files / "unsat.vnnlib"), "unsat"]]


def argmax_problem(seed: int, r: float) -> Problem:
    """Tiny 2-D ReLU net (``tiny_net``, float32) on the box [0.5, 0.4] +- r; the VNN-LIB-style property
    "some class j != y is on top" (disjunct j: z_i - z_j <= 0 for every i != j), y the class at the
    centre."""
    net = tiny_net(seed, 2, "relu").float()
    net.input_shape = (2,)
    centre = np.array([0.5, 0.4])
    y = int(net(torch.tensor(centre[None], dtype=torch.float32)).argmax())
    disjuncts = []
    for j in (c for c in range(3) if c != y):
        rows = [np.eye(3)[i] - np.eye(3)[j] for i in range(3) if i != j]
        disjuncts.append((np.array(rows), np.zeros(2)))
    return Problem(Network(net), Property(centre - r, centre + r, disjuncts))


def grid_has_counterexample(problem: Problem) -> bool:
    axes = [np.linspace(a, b, 201) for a, b in zip(problem.prop.lo, problem.prop.hi, strict=True)]
    pts = torch.tensor(np.stack(np.meshgrid(*axes), axis=-1).reshape(-1, 2))
    with torch.no_grad():
        z = problem.net.model64(pts).numpy()
    centre = (problem.prop.lo + problem.prop.hi) / 2
    return bool((z.argmax(axis=1) != problem.outputs64(centre).argmax()).any())


def cheap_deciders_leave_open(problem: Problem) -> bool:
    open_ = torch.ones(len(problem.prop.disjuncts), dtype=torch.bool)
    for decider in DECIDERS[:-1]:
        open_ &= ~decider(problem, open_, time.monotonic() + 10).refuted
    return bool(open_.any())


@pytest.mark.parametrize("mode", ["relu", "input"])
def test_bab_proves_unsat_where_the_bound_passes_leave_it_open(mode: str) -> None:
    problem = argmax_problem(0, 0.3)
    assert DECIDERS[-1].name == "bab"
    assert cheap_deciders_leave_open(problem) and not grid_has_counterexample(problem)
    deciders = (*DECIDERS[:-1], BabDecider(options=BabOptions(mode=mode)))
    verdict = verify_problem(problem, 10, deciders=deciders)
    assert (verdict.result, verdict.by) == ("unsat", "bab")


@pytest.mark.parametrize("mode", ["relu", "input"])
def test_bab_finds_a_counterexample_that_verify_rechecks(mode: str) -> None:
    problem = argmax_problem(1, 0.3)
    assert grid_has_counterexample(problem)
    decider = BabDecider(options=BabOptions(mode=mode))
    decision = decider(problem, torch.ones(2, dtype=torch.bool), time.monotonic() + 10)
    assert decision.x is not None and problem.holds(decision.x) and not decision.refuted.any()
    verdict = verify_problem(problem, 10, deciders=(decider,))
    assert verdict.result == "sat" and verdict.by in ("attack", "bab") and problem.holds(verdict.x)


def test_a_deciders_counterexample_is_rechecked() -> None:
    """A decider that offers a point satisfying no disjunct does not make the instance sat."""
    problem = argmax_problem(0, 0.3)

    def liar(problem: Problem, open_: torch.Tensor, deadline: float) -> Decision:
        return Decision(torch.zeros_like(open_), np.array([0.5, 0.4]))

    liar.name, liar.cost = "liar", 0.0  # type: ignore[attr-defined]
    assert verify_problem(problem, 0.5, deciders=(liar,)).result == "unknown"
