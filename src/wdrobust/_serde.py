"""JSON forms of dataclasses, generated from their fields and type hints (no hand-written to/from pairs).

``to_json(obj)`` gives the strict-JSON value of a dataclass (one key per field, in field order), a dict, a
list or tuple, a numpy array (nested lists) or a scalar; non-finite floats become the strings "inf", "-inf",
"nan" (what ``json.dumps(..., allow_nan=False)`` accepts; ``strict=False`` keeps them as floats).
``from_json(cls, data)`` reads such a value back as ``cls``, guided by the type hints: dataclasses,
``X | None``, ``tuple[X, ...]``, ``list[X]``, ``dict[str, X]``, ``Literal[...]``, ``NDArray[np.float64]``
(any floating dtype), bool, int, float (a JSON number or one of the three strings), str and ``Any`` (taken
as it is). A field absent from the JSON takes its default; a malformed value raises ValueError naming its
path (``$.threat_models[0].p: expected a number, got 'two'``), and so does a ValueError the class's
constructor raises (``__post_init__`` checks).

Where a field's JSON form is not the plain one, its metadata says so (``field(metadata=form(...))``): the
JSON key as a dotted path when it differs from the name (``key="clean.accuracy"``: nested objects),
``inline`` (a dataclass field whose keys sit in the parent's object), ``omit_none`` (None is written as no
key and no key is read as None), ``skip`` (not in the JSON form; read back as its default) and ``encode``
(the one hook: the JSON value of the field's value where it is spelled differently; reading uses the type).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import numpy as np

T = TypeVar("T")
#: The metadata key of a field's ``Form``.
META = "json"
#: How the three non-finite floats are spelled in strict JSON.
NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


@dataclass(frozen=True)
class Form:
    """How one dataclass field appears in its JSON object (see the module docstring); key None: the
    field's name."""

    key: str | None = None
    inline: bool = False
    omit_none: bool = False
    skip: bool = False
    encode: Callable[[Any], Any] | None = None


def form(**options: Any) -> dict[str, Form]:
    """Field metadata declaring a JSON form: ``field(metadata=form(key="lower.best"))``."""
    return {META: Form(**options)}


@functools.cache
def _layout(cls: type) -> tuple[tuple[dataclasses.Field, Form, tuple[str, ...], Any], ...]:
    """(field, form, JSON key path, type hint) of every field of a dataclass, in field order."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        spec = f.metadata.get(META, Form())
        out.append((f, spec, tuple((spec.key or f.name).split(".")), hints[f.name]))
    return tuple(out)


def _finite_or_name(value: float) -> float | str:
    """value, or "inf" / "-inf" / "nan" when it is not finite."""
    if math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def to_json(obj: Any, strict: bool = True) -> Any:
    """The JSON value of obj (dataclasses by their fields' forms); non-finite floats as the strings "inf",
    "-inf", "nan" when strict, else kept (for ``json.dumps`` with its default allow_nan, as the store)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out: dict[str, Any] = {}
        for f, spec, path, _ in _layout(type(obj)):
            value = getattr(obj, f.name)
            if spec.skip or (spec.omit_none and value is None):
                continue
            if spec.inline:
                out.update(to_json(value, strict))
                continue
            target = out
            for part in path[:-1]:
                target = target.setdefault(part, {})
            target[path[-1]] = to_json(value if spec.encode is None else spec.encode(value), strict)
        return out
    if isinstance(obj, dict):
        return {str(k): to_json(v, strict) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_json(v, strict) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_json(obj.tolist(), strict)
    if isinstance(obj, float) and strict:
        return _finite_or_name(obj)
    return obj


def from_json(cls: type[T], data: Any, where: str = "$") -> T:
    """``data`` (a JSON value, as ``to_json`` writes it) read as ``cls``; where: the name of ``data`` in
    error messages (the root of every path). ValueError naming the path of the first bad value."""
    return _decode(cls, data, where)


def _fail(where: str, expected: str, value: Any) -> ValueError:
    return ValueError(f"{where}: expected {expected}, got {value!r:.80}")


def _decode(tp: Any, value: Any, where: str) -> Any:
    """value read as the type hint tp (see the module docstring for the supported hints)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        return _object(tp, value, where)
    if origin in (types.UnionType, typing.Union):
        others = [a for a in args if a is not type(None)]
        if len(others) != 1:
            raise TypeError(f"{tp}: only unions of one type with None have a JSON form")
        return None if value is None else _decode(others[0], value, where)
    if origin is Literal:
        if value not in args:
            raise _fail(where, " or ".join(repr(a) for a in args), value)
        return value
    if origin in (tuple, list):
        if origin is tuple and (len(args) != 2 or args[1] is not Ellipsis):
            raise TypeError(f"{tp}: only tuple[X, ...] has a JSON form")
        if not isinstance(value, list):
            raise _fail(where, "a list", value)
        return origin(_decode(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise _fail(where, "an object", value)
        return {k: _decode(args[1], v, f"{where}.{k}") for k, v in value.items()}
    if origin is np.ndarray:
        return _array(typing.get_args(args[1])[0], value, where)
    return _scalar(tp, value, where)


def _scalar(tp: Any, value: Any, where: str) -> Any:
    """A bool, int, float (a number or "inf", "-inf", "nan") or str; bools are not numbers."""
    if tp is float:
        if isinstance(value, str) and value in NON_FINITE:
            return NON_FINITE[value]
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise _fail(where, 'a number (or "inf", "-inf", "nan")', value)
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _fail(where, "an integer", value)
    if tp in (bool, str):
        if isinstance(value, tp):
            return value
        raise _fail(where, "true or false" if tp is bool else "a string", value)
    raise TypeError(f"{tp} has no JSON form")


def _array(dtype: Any, value: Any, where: str) -> np.ndarray:
    """Nested lists of numbers as a numpy array of a floating dtype."""
    if not np.issubdtype(dtype, np.floating):
        raise TypeError(f"NDArray[{dtype}]: only floating arrays have a JSON form")

    def numbers(v: Any, at: str) -> Any:
        if isinstance(v, list):
            return [numbers(x, f"{at}[{i}]") for i, x in enumerate(v)]
        return _scalar(float, v, at)

    if not isinstance(value, list):
        raise _fail(where, "a list of numbers", value)
    floats = numbers(value, where)
    try:
        return np.asarray(floats, dtype=dtype)
    except ValueError:  # ragged nesting
        raise _fail(where, "a rectangular array of numbers", value) from None


def _object(cls: type[T], data: Any, where: str) -> T:
    """A dataclass from its JSON object: every field read, then no key left unread."""
    if not isinstance(data, dict):
        raise _fail(where, "an object", data)
    obj = _build(cls, data, where)
    _check_keys(data, _keys(cls), where)
    return obj


def _build(cls: type[T], data: dict[str, Any], where: str) -> T:
    """cls from the keys of its fields in data (inline fields from the same object)."""
    values: dict[str, Any] = {}
    for f, spec, path, tp in _layout(cls):
        if spec.skip:
            continue
        if spec.inline:
            values[f.name] = _build(tp, data, where)
            continue
        node, at = data, where
        for part in path:
            if not isinstance(node, dict):
                raise _fail(at, "an object", node)
            if part not in node:
                break
            node, at = node[part], f"{at}.{part}"
        else:
            values[f.name] = _decode(tp, node, at)
            continue
        if spec.omit_none:
            values[f.name] = None
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ValueError(f"{at}: missing key {part!r}")
    try:
        return cls(**values)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


@functools.cache
def _keys(cls: type) -> dict[str, Any]:
    """The keys a dataclass's JSON object may hold: key -> None, or the same for a nested object."""
    tree: dict[str, Any] = {}
    for _, spec, path, tp in _layout(cls):
        if spec.skip:
            continue
        if spec.inline:
            tree.update(_keys(tp))
            continue
        node = tree
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = None
    return tree


def _check_keys(data: dict[str, Any], tree: dict[str, Any], where: str) -> None:
    """ValueError naming the first key of data (or of its nested objects of dotted keys) not in tree."""
    for key, value in data.items():
        if key not in tree:
            raise ValueError(f"{where}: unexpected key {key!r}")
        if tree[key] is not None:
            _check_keys(value, tree[key], f"{where}.{key}")
