"""VNN-LIB properties (the verification competition's SMT-LIB fragment) and its ``instances.csv``.

``read_vnnlib(path)`` reads a .vnnlib or .vnnlib.gz file into a ``Property``: the input box lo <= x <= hi
and the *counterexample condition* on the outputs y as a disjunction of conjunctions of linear
inequalities. Sign convention: each disjunct is a pair (C, d), C (m, n_out), d (m,), and it holds at y
when C y + d <= 0 for every row; an input x in the box whose outputs satisfy some disjunct is a
counterexample (the property, "no such x", is verified when no disjunct can hold over the box). For
instance ``(>= Y_j Y_y)`` (class j reaches the true class y) is the row y_y - y_j <= 0: C = e_y - e_j,
d = 0.

The fragment: ``(declare-const X_i Real)`` / ``(declare-const Y_j Real)`` with indices 0..n-1;
top-level ``(assert A)`` where A is an atom, ``(and ...)`` or ``(or ...)`` of ``(and ...)`` / atoms;
atoms ``(<= a b)`` / ``(>= a b)`` with a, b linear terms: numbers (scientific notation included),
variables, ``(+ ...)``, ``(- a b)``, ``(- a)``, ``(* c v)``. An atom over inputs only must bound one
variable by a number and sit at the top (conjunctive) level; atoms over outputs only build the
property; the asserts are conjoined (a product of disjunctions, expanded). Anything else (strict
inequalities, atoms mixing X and Y, disjunctions over inputs, unbounded inputs) is refused with a
one-line ValueError naming it. Comments run from ``;`` to the end of the line.

``robustness_of`` recognises the l_inf robustness property of a classifier (one disjunct y_y - y_j <= 0 per
other class j) and ``ball_of`` recovers the image and radius from its box (see its docstring).
"""

from __future__ import annotations

import csv
import gzip
import itertools
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

Sexp = str | list["Sexp"]
#: A parenthesis or a run of other non-space characters; a comment runs from ';' to the end of the line.
TOKEN = re.compile(r"[()]|[^\s();]+")
COMMENT = re.compile(r";[^\n]*")


@dataclass(frozen=True)
class Property:
    """Input box lo, hi (float64 (n_in,)) and the counterexample condition: a list of disjuncts (C, d),
    C (m, n_out), d (m,), each meaning "C y + d <= 0 for all rows" (module docstring)."""

    lo: np.ndarray
    hi: np.ndarray
    disjuncts: list[tuple[np.ndarray, np.ndarray]]

    @property
    def n_outputs(self) -> int:
        return int(self.disjuncts[0][0].shape[1]) if self.disjuncts else 0


@dataclass(frozen=True)
class Instance:
    """One row of a competition instances.csv: network and property paths (resolved against the csv's
    folder), the timeout in seconds, and the two paths as the row writes them (``key``: how a results CSV
    names the instance)."""

    onnx: Path
    vnnlib: Path
    timeout: float
    key: tuple[str, str]


def tokenize(text: str) -> list[str]:
    """'(', ')' and atoms of an S-expression text, comments (';' to end of line) removed."""
    return TOKEN.findall(COMMENT.sub("", text))


def parse_sexps(text: str) -> list[Sexp]:
    """The top-level S-expressions of a text (nested lists of atom strings)."""
    stack: list[list[Sexp]] = [[]]
    for tok in tokenize(text):
        if tok == "(":
            stack.append([])
        elif tok == ")":
            if len(stack) == 1:
                raise ValueError("VNN-LIB: unbalanced ')'")
            done = stack.pop()
            stack[-1].append(done)
        else:
            stack[-1].append(tok)
    if len(stack) != 1:
        raise ValueError("VNN-LIB: unbalanced '(' (the file ends inside an expression)")
    return stack[0]


def _show(e: Sexp) -> str:
    text = e if isinstance(e, str) else "(" + " ".join(_show(x) for x in e) + ")"
    return text if len(text) <= 60 else text[:57] + "..."


class _Reader:
    """Declarations, then linear terms over the stacked variables (X_0.., Y_0..) as coefficient vectors."""

    def __init__(self, exprs: list[Sexp]) -> None:
        names: dict[str, list[int]] = {"X": [], "Y": []}
        for e in exprs:
            if isinstance(e, list) and e and e[0] == "declare-const":
                if len(e) != 3 or e[2] != "Real" or not isinstance(e[1], str):
                    raise ValueError(f"VNN-LIB: unsupported declaration {_show(e)}")
                prefix, _, index = e[1].partition("_")
                if prefix not in names or not index.isdigit():
                    raise ValueError(f"VNN-LIB: unsupported variable name {e[1]!r} (expected X_i or Y_j)")
                names[prefix].append(int(index))
        for prefix, idx in names.items():
            if sorted(idx) != list(range(len(idx))) or not idx:
                raise ValueError(f"VNN-LIB: the {prefix}_i variables must be declared once each, from 0")
        self.n_in, self.n_out = len(names["X"]), len(names["Y"])

    def term(self, e: Sexp) -> tuple[dict[int, float], float]:
        """(sparse coefficients over the stacked [X; Y] indices, constant) of a linear term."""
        if isinstance(e, str):
            prefix, _, index = e.partition("_")
            if prefix in ("X", "Y") and index.isdigit():
                if int(index) >= (self.n_in if prefix == "X" else self.n_out):
                    raise ValueError(f"VNN-LIB: undeclared variable {e}")
                return {int(index) + (0 if prefix == "X" else self.n_in): 1.0}, 0.0
            try:
                return {}, float(e)
            except ValueError:
                raise ValueError(f"VNN-LIB: unknown symbol {e!r}") from None
        head, parts = (e[0], [self.term(x) for x in e[1:]]) if e else ("", [])
        if head == "+" and parts:
            return _combine(parts, [1.0] * len(parts)), sum(p[1] for p in parts)
        if head == "-" and len(parts) == 1:
            return _combine(parts, [-1.0]), -parts[0][1]
        if head == "-" and len(parts) == 2:
            return _combine(parts, [1.0, -1.0]), parts[0][1] - parts[1][1]
        if head == "*" and len(parts) == 2 and not (parts[0][0] and parts[1][0]):
            (a, c), (b, k) = parts
            return _combine([(a, c), (b, k)], [k, c]), c * k
        raise ValueError(f"VNN-LIB: unsupported term {_show(e)}")

    def atom(self, e: Sexp) -> tuple[dict[int, float], float]:
        """(a, c) with the atom meaning a . [x; y] + c <= 0 (a sparse)."""
        if not isinstance(e, list) or len(e) != 3 or e[0] not in ("<=", ">="):
            raise ValueError(f"VNN-LIB: unsupported constraint {_show(e)} (expected (<= a b) or (>= a b))")
        left, right = self.term(e[1]), self.term(e[2])
        first, second = (left, right) if e[0] == "<=" else (right, left)
        return _combine([first, second], [1.0, -1.0]), first[1] - second[1]


def _combine(parts: list[tuple[dict[int, float], float]], weights: list[float]) -> dict[int, float]:
    """sum_k weights[k] * parts[k] of sparse coefficient maps (zeros dropped)."""
    out: dict[int, float] = {}
    for (coef, _), w in zip(parts, weights, strict=True):
        for i, v in coef.items():
            out[i] = out.get(i, 0.0) + w * v
    return {i: v for i, v in out.items() if v != 0.0}


def _dnf(reader: _Reader, e: Sexp) -> list[list[tuple[dict[int, float], float]]]:
    """A formula as a list of conjunctions of atoms."""
    if isinstance(e, list) and e and e[0] == "and":
        return [list(itertools.chain(*c)) for c in itertools.product(*(_dnf(reader, x) for x in e[1:]))]
    if isinstance(e, list) and e and e[0] == "or":
        return [c for x in e[1:] for c in _dnf(reader, x)]
    return [[reader.atom(e)]]


def parse_vnnlib(text: str, source: str = "VNN-LIB") -> Property:
    """The Property of a VNN-LIB text (module docstring); ``source`` names it in errors."""
    try:
        return _parse(text)
    except ValueError as exc:
        raise ValueError(f"{source}: {str(exc).removeprefix('VNN-LIB: ')}") from None


def _parse(text: str) -> Property:
    exprs = parse_sexps(text)
    reader = _Reader(exprs)
    n_in = reader.n_in
    lo, hi = np.full(n_in, -np.inf), np.full(n_in, np.inf)
    factors: list[list[list[tuple[dict[int, float], float]]]] = []
    for e in exprs:
        if not (isinstance(e, list) and e and e[0] == "assert"):
            if not (isinstance(e, list) and e and e[0] == "declare-const"):
                raise ValueError(f"VNN-LIB: unsupported command {_show(e)}")
            continue
        if len(e) != 2:
            raise ValueError(f"VNN-LIB: malformed {_show(e)}")
        conjunctions = _dnf(reader, e[1])
        if not any(i < n_in for c in conjunctions for a, _ in c for i in a):
            factors.append(conjunctions)
            continue
        if len(conjunctions) != 1:
            raise ValueError(f"VNN-LIB: a disjunction over inputs {_show(e)}")
        for a, c in conjunctions[0]:
            if len(a) != 1 or next(iter(a)) >= n_in:
                raise ValueError(f"VNN-LIB: input constraint {_show(e)} is not a bound on one X_i")
            ((i, s),) = a.items()
            if s > 0:
                hi[i] = min(hi[i], -c / s)
            else:
                lo[i] = max(lo[i], -c / s)
    if not np.isfinite(lo).all() or not np.isfinite(hi).all():
        missing = int(np.flatnonzero(~(np.isfinite(lo) & np.isfinite(hi)))[0])
        raise ValueError(f"VNN-LIB: input X_{missing} has no lower or upper bound")
    if not factors:
        raise ValueError("VNN-LIB: no output constraint")
    disjuncts = []
    for combo in itertools.product(*factors):
        rows = list(itertools.chain(*combo))
        matrix = np.zeros((len(rows), reader.n_out))
        for r, (a, _) in enumerate(rows):
            for i, v in a.items():
                matrix[r, i - n_in] = v
        disjuncts.append((matrix, np.array([c for _, c in rows], dtype=float)))
    return Property(lo, hi, disjuncts)


def read_vnnlib(path: str | Path) -> Property:
    """The Property of a .vnnlib or .vnnlib.gz file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        text = (gzip.decompress(raw) if path.name.lower().endswith(".gz") else raw).decode()
    except (OSError, EOFError, gzip.BadGzipFile, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read VNN-LIB file {path}: {exc}") from None
    return parse_vnnlib(text, str(path))


def read_instances(path: str | Path) -> list[Instance]:
    """The rows onnx,vnnlib,timeout of a competition instances.csv (paths relative to its folder)."""
    path = Path(path)
    rows = []
    with path.open(newline="") as f:
        for k, row in enumerate(csv.reader(f), 1):
            if not row or not "".join(row).strip():
                continue
            try:
                onnx, vnnlib, timeout = (cell.strip() for cell in row)
                where = (path.parent / onnx, path.parent / vnnlib)
                rows.append(Instance(*where, float(timeout), (onnx, vnnlib)))
            except ValueError:
                raise ValueError(f"{path} line {k}: expected onnx,vnnlib,timeout, got {row!r:.80}") from None
    return rows


def robustness_of(prop: Property) -> int | None:
    """The true class y when the property is exactly "some class j != y reaches y" (one disjunct
    y_y - y_j <= 0 for each j != y, in any order), else None."""
    n = prop.n_outputs
    rows = []
    for c, d in prop.disjuncts:
        if c.shape[0] != 1 or d[0] != 0 or sorted(c[0].tolist()) != [-1.0] + [0.0] * (n - 2) + [1.0]:
            return None
        rows.append((int(np.argmax(c[0])), int(np.argmin(c[0]))))
    ys = {y for y, _ in rows}
    if len(ys) != 1 or sorted(j for _, j in rows) != [j for j in range(n) if j not in ys]:
        return None
    return ys.pop()


def ball_of(
    lo: np.ndarray, hi: np.ndarray, levels: int | None = 255, tol: float = 1e-5
) -> tuple[np.ndarray, float]:
    """(x, eps) with [lo, hi] = B_inf(x, eps) cap [0, 1]^d, for a box in pixel space (float64 (d,)).

    Each coordinate is [max(x - eps, 0), min(x + eps, 1)]. A coordinate clipped on neither side has width
    2 eps and every other one less, so eps = max (hi - lo) / 2. Then x = (lo + hi) / 2 where lo > 0 and
    hi < 1; x = hi - eps where lo is clipped at 0 (hi = x + eps is not); x = lo + eps where hi is clipped
    at 1; a coordinate clipped on both sides (eps >= 1/2) does not determine x and is refused. With
    ``levels`` the pixels are grey levels k / levels: x is rounded to them and must lie within 1e-3 of a
    level. Finally clip(x +- eps) must give the box back to ``tol``, else ValueError (not such a ball).
    """
    eps = float(np.max(hi - lo)) / 2
    at0, at1 = lo <= tol, hi >= 1 - tol
    if (at0 & at1).any():
        first = int(np.flatnonzero(at0 & at1)[0])
        raise ValueError(f"the box is [0, 1] at coordinate {first}: its centre is lost")
    x = np.where(at0, hi - eps, np.where(at1, lo + eps, (lo + hi) / 2))
    if levels is not None:
        k = np.round(x * levels)
        off = float(np.max(np.abs(x * levels - k)))
        if off > 1e-3:
            raise ValueError(f"the box centre is not on the grid k/{levels} (off by {off:.3g} levels)")
        x = k / levels
    err = max(np.max(np.abs(np.maximum(x - eps, 0) - lo)), np.max(np.abs(np.minimum(x + eps, 1) - hi)))
    if err > tol:
        raise ValueError(f"the box is not an l_inf ball cut to [0, 1] (off by {err:.3g})")
    return x, eps


def pixel_box(
    prop: Property, shape: tuple[int, ...], mean: list[float] | None = None, std: list[float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The box in pixel space, (C, *spatial) each: lo * std_c + mean_c (the inverse of an input
    normalisation (x - mean) / std applied before the network), or the box itself without mean/std."""
    lo, hi = prop.lo.reshape(shape), prop.hi.reshape(shape)
    if mean is None and std is None:
        return lo, hi
    channel = (-1,) + (1,) * (len(shape) - 1)
    m = np.asarray(mean if mean is not None else [0.0], float).reshape(channel)
    s = np.asarray(std if std is not None else [1.0], float).reshape(channel)
    return lo * s + m, hi * s + m


def robustness_instance(
    prop: Property,
    shape: tuple[int, ...],
    mean: list[float] | None = None,
    std: list[float] | None = None,
    levels: int | None = 255,
) -> tuple[np.ndarray, int, float]:
    """(x (C, *spatial) float64 in [0, 1], true class y, l_inf radius eps) of a robustness property whose
    box is B_inf(x, eps) cap [0, 1]^d in pixel space, after undoing an input normalisation
    (x - mean) / std applied before the network (``pixel_box``); see ``ball_of`` for the recovery and
    ``levels``. ValueError (one line) for any other property or box."""
    y = robustness_of(prop)
    if y is None:
        raise ValueError("not a robustness property (one disjunct y_y <= y_j for each class j != y)")
    if math.prod(shape) != prop.lo.size:
        raise ValueError(f"shape {tuple(shape)} does not hold the property's {prop.lo.size} inputs")
    lo, hi = pixel_box(prop, shape, mean, std)
    x, eps = ball_of(lo.reshape(-1), hi.reshape(-1), levels)
    return x.reshape(shape), y, eps
