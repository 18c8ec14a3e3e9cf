"""VNN-LIB reading (data.vnnlib): tokenizer, the linear fragment and its sign convention (checked against
the formula evaluated directly), refusals by name, instances.csv, the recovery of an l_inf ball cut to
[0, 1] (clipped on either side) and the export script."""

from __future__ import annotations

import gzip
import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _paths import ROOT

from wdrobust.data.images import read_image_npz
from wdrobust.data.vnnlib import (
    ball_of,
    parse_sexps,
    parse_vnnlib,
    read_instances,
    read_vnnlib,
    robustness_instance,
    robustness_of,
    tokenize,
)


def declarations(n_in: int, n_out: int) -> str:
    xs = "".join(f"(declare-const X_{i} Real)\n" for i in range(n_in))
    return xs + "".join(f"(declare-const Y_{j} Real)\n" for j in range(n_out))


def box_text(lo: np.ndarray, hi: np.ndarray) -> str:
    return "".join(
        f"(assert (<= X_{i} {float(h)!r}))\n(assert (>= X_{i} {float(v)!r}))\n"
        for i, (v, h) in enumerate(zip(lo, hi, strict=True))
    )


def robustness_text(lo: np.ndarray, hi: np.ndarray, y: int, k: int) -> str:
    others = "".join(f"  (and (>= Y_{j} Y_{y}))\n" for j in range(k) if j != y)
    return f"; label {y}\n" + declarations(len(lo), k) + box_text(lo, hi) + f"(assert (or\n{others}))\n"


def holds(prop, y: np.ndarray) -> bool:
    """Some disjunct's rows all satisfy C y + d <= 0."""
    return any(bool(np.all(c @ y + d <= 0)) for c, d in prop.disjuncts)


def test_tokenizer_drops_comments_and_keeps_numbers() -> None:
    assert tokenize("(a ; comment (\n  b)1.5e-3 -2E+2)") == ["(", "a", "b", ")", "1.5e-3", "-2E+2", ")"]
    assert parse_sexps("(x (y z)) w") == [["x", ["y", "z"]], "w"]
    with pytest.raises(ValueError, match="unbalanced"):
        parse_sexps("(a (b)")


def test_sign_convention_matches_the_formula() -> None:
    text = (
        declarations(2, 3)
        + """
    (assert (<= X_0 1e0)) (assert (>= X_0 -0.5)) (assert (and (<= X_1 2.5E-1) (>= X_1 0)))
    (assert (or (and (>= Y_1 Y_0) (<= Y_2 0.5)) (and (<= (+ Y_0 (* 2 Y_1)) -1e-1)) (>= (- Y_2 Y_0) 0.25)))
    (assert (<= Y_0 3))
    """
    )
    prop = parse_vnnlib(text)
    assert np.array_equal(prop.lo, [-0.5, 0.0]) and np.array_equal(prop.hi, [1.0, 0.25])
    formula = lambda y: (  # noqa: E731
        ((y[1] >= y[0] and y[2] <= 0.5) or y[0] + 2 * y[1] <= -0.1 or y[2] - y[0] >= 0.25) and y[0] <= 3
    )
    samples = np.random.default_rng(0).uniform(-4, 4, (2000, 3))
    assert all(holds(prop, y) == formula(y) for y in samples)
    assert len(prop.disjuncts) == 3 and prop.n_outputs == 3


def test_robustness_disjuncts_are_margin_rows() -> None:
    prop = parse_vnnlib(robustness_text(np.zeros(2), np.ones(2), 2, 4))
    assert robustness_of(prop) == 2
    for (c, d), j in zip(prop.disjuncts, [0, 1, 3], strict=True):
        assert np.array_equal(c, [np.eye(4)[2] - np.eye(4)[j]]) and np.array_equal(d, [0.0])
    assert (
        robustness_of(
            parse_vnnlib(
                declarations(1, 3) + "(assert (<= X_0 1)) (assert (>= X_0 0))(assert (or (>= Y_1 Y_0)))"
            )
        )
        is None
    )


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ("(assert (< Y_0 Y_1))", "unsupported constraint"),
        ("(assert (<= X_0 Y_1))", "is not a bound on one X_i"),
        ("(assert (or (<= X_0 0.5) (>= X_0 0.7)))", "a disjunction over inputs"),
        ("(assert (<= Y_0 Y_7))", "undeclared variable Y_7"),
        ("(assert (<= (exp Y_0) 1))", "unsupported term"),
        ("(check-sat)", "unsupported command"),
    ],
)
def test_outside_the_fragment_is_refused_by_name(body: str, named: str) -> None:
    text = declarations(1, 2) + "(assert (<= X_0 1)) (assert (>= X_0 0))" + body + "(assert (<= Y_0 Y_1))"
    with pytest.raises(ValueError, match=named):
        parse_vnnlib(text, "p.vnnlib")


def test_unbounded_input_is_refused() -> None:
    with pytest.raises(ValueError, match="X_1 has no lower or upper bound"):
        parse_vnnlib(
            declarations(2, 2) + "(assert (<= X_0 1)) (assert (>= X_0 0)) (assert (<= X_1 1))"
            "(assert (<= Y_0 Y_1))"
        )


def test_gzipped_file_and_instances_csv(tmp_path: Path) -> None:
    text = robustness_text(np.zeros(3), np.ones(3) * 0.5, 1, 3)
    (tmp_path / "p.vnnlib.gz").write_bytes(gzip.compress(text.encode()))
    assert np.array_equal(read_vnnlib(tmp_path / "p.vnnlib.gz").hi, [0.5] * 3)
    (tmp_path / "instances.csv").write_text("onnx/a.onnx.gz,vnnlib/p.vnnlib.gz,120\nb.onnx,q.vnnlib,3.5\n")
    rows = read_instances(tmp_path / "instances.csv")
    assert [(r.onnx, r.vnnlib, r.timeout) for r in rows] == [
        (tmp_path / "onnx/a.onnx.gz", tmp_path / "vnnlib/p.vnnlib.gz", 120.0),
        (tmp_path / "b.onnx", tmp_path / "q.vnnlib", 3.5),
    ]
    (tmp_path / "bad.csv").write_text("a,b\n")
    with pytest.raises(ValueError, match="line 1: expected onnx,vnnlib,timeout"):
        read_instances(tmp_path / "bad.csv")


@pytest.mark.parametrize("eps", [0.03, 2 / 255, 0.2])
def test_ball_recovery_with_clipping_on_both_sides(eps: float) -> None:
    levels = np.random.default_rng(1).integers(0, 256, 300)
    levels[:4] = [0, 255, 1, 254]  # clipped at 0, at 1, and nearly so
    x = levels / 255
    lo, hi = np.maximum(x - eps, 0), np.minimum(x + eps, 1)
    got, e = ball_of(lo, hi)
    assert np.array_equal(got, x) and abs(e - eps) < 1e-12
    lo32, hi32 = lo.astype(np.float32).astype(float), hi.astype(np.float32).astype(float)  # files hold floats
    got, e = ball_of(lo32, hi32)
    assert np.array_equal(got, x) and abs(e - eps) < 1e-7


def test_ball_recovery_refusals() -> None:
    with pytest.raises(ValueError, match="its centre is lost"):
        ball_of(np.array([0.0, 0.2]), np.array([1.0, 0.8]))
    with pytest.raises(ValueError, match="not on the grid"):
        ball_of(np.array([0.1, 0.3]), np.array([0.2, 0.4]))
    with pytest.raises(ValueError, match="not an l_inf ball"):
        ball_of(np.array([0.1, 0.3]), np.array([0.2, 0.35]), levels=None)


def test_robustness_instance_undoes_the_normalisation() -> None:
    mean, std, eps = [0.5, 0.4], [0.25, 0.2], 4 / 255
    x = np.random.default_rng(2).integers(0, 256, (2, 3, 3)) / 255
    lo, hi = np.maximum(x - eps, 0), np.minimum(x + eps, 1)
    m, s = np.array(mean)[:, None, None], np.array(std)[:, None, None]
    prop = parse_vnnlib(robustness_text(((lo - m) / s).ravel(), ((hi - m) / s).ravel(), 0, 3))
    got, y, e = robustness_instance(prop, (2, 3, 3), mean, std)
    assert np.array_equal(got, x) and y == 0 and abs(e - eps) < 1e-12
    with pytest.raises(ValueError, match="does not hold the property's 18 inputs"):
        robustness_instance(prop, (3, 3, 3), mean, std)


def test_export_script_writes_an_image_npz(tmp_path: Path) -> None:
    xs = [np.array([0, 3, 255, 128]) / 255, np.array([7, 0, 9, 254]) / 255]
    lines = []
    for k, (x, y) in enumerate(zip(xs, [1, 0], strict=True)):
        text = robustness_text(np.maximum(x - 0.03, 0), np.minimum(x + 0.03, 1), y, 3)
        (tmp_path / f"p{k}.vnnlib").write_text(text)
        lines.append(f"net.onnx,p{k}.vnnlib,10")
    (tmp_path / "instances.csv").write_text("\n".join(lines + lines) + "\n")  # repeats are exported once
    script = [sys.executable, str(ROOT / "scripts" / "vnnlib_export.py")]
    out = tmp_path / "x.npz"
    run = subprocess.run(
        [*script, str(tmp_path / "instances.csv"), "--shape", "1,2,2", "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    x, y = read_image_npz(out, "test")
    assert np.allclose(x.reshape(2, 4), np.stack(xs), atol=1e-7) and list(y) == [1, 0]
    assert np.allclose(np.load(out)["eps"], 0.03, atol=1e-12)
    bad = subprocess.run(
        [*script, str(tmp_path / "p0.vnnlib"), "--shape", "1,3,3", "--out", str(tmp_path / "b.npz")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and bad.stderr.startswith("error: ")
    assert not (tmp_path / "b.npz").exists()


def test_products_of_disjunctions_expand() -> None:
    text = (
        declarations(1, 2) + "(assert (<= X_0 1)) (assert (>= X_0 0))"
        "(assert (or (<= Y_0 0) (<= Y_1 0))) (assert (or (>= Y_0 1) (>= Y_1 1)))"
    )
    prop = parse_vnnlib(text)
    assert len(prop.disjuncts) == 4
    for y in itertools.product([-0.5, 0.5, 1.5], repeat=2):
        want = (y[0] <= 0 or y[1] <= 0) and (y[0] >= 1 or y[1] >= 1)
        assert holds(prop, np.array(y)) == want
