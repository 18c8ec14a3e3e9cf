"""The generated JSON forms of dataclasses (``wdrobust._serde``): every supported type hint and field form
round-trips, non-finite floats are spelled as strings, and malformed values are refused naming their path."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pytest
from numpy.typing import NDArray

from wdrobust._serde import form, from_json, to_json


@dataclass(frozen=True)
class Cost:
    seconds: float
    passes: int


@dataclass(frozen=True)
class Entry:
    value: float
    tags: tuple[str, ...] | None = field(default=None, kw_only=True, metadata=form(omit_none=True))
    cost: Cost = field(metadata=form(inline=True))


@dataclass(frozen=True)
class Doc:
    kind: Literal["toy/v1"]
    entries: dict[str, Entry]
    best: Entry | None = field(metadata=form(key="summary.best"))
    score: float = field(metadata=form(key="summary.score", encode=lambda v: round(v, 1)))
    flags: list[bool]
    extra: dict[str, Any]
    note: str = "none"
    local: str | None = field(default=None, metadata=form(skip=True))


@dataclass(frozen=True, eq=False)
class Span:
    lo: NDArray[np.float64]
    hi: NDArray[np.float64]

    def __post_init__(self) -> None:
        if (self.hi < self.lo).any():
            raise ValueError("hi < lo")


def _doc() -> Doc:
    entries = {
        "a": Entry(math.inf, tags=("x", "y"), cost=Cost(0.5, 3)),
        "b": Entry(-1.0, cost=Cost(1.0, 0)),
    }
    return Doc("toy/v1", entries, entries["b"], 2.25, [True, False], {"eps": [math.nan, 1]}, local="here")


def test_a_document_is_written_in_field_order_with_its_declared_forms_and_read_back():
    written = to_json(_doc())
    assert json.dumps(written, allow_nan=False) == json.dumps(
        {
            "kind": "toy/v1",
            "entries": {
                "a": {"value": "inf", "tags": ["x", "y"], "seconds": 0.5, "passes": 3},
                "b": {"value": -1.0, "seconds": 1.0, "passes": 0},
            },
            "summary": {"best": {"value": -1.0, "seconds": 1.0, "passes": 0}, "score": 2.2},
            "flags": [True, False],
            "extra": {"eps": ["nan", 1]},
            "note": "none",
        }
    )
    back = from_json(Doc, json.loads(json.dumps(written)))
    assert back.entries == _doc().entries and back.best == _doc().best and back.local is None
    assert back.score == 2.2 and back.extra == {"eps": ["nan", 1]}  # Any is taken as it is
    assert type(back.entries["b"].cost.seconds) is float and back.entries["a"].tags == ("x", "y")
    assert to_json(back) == written


def test_absent_keys_take_defaults_and_non_finite_floats_read_back():
    data = to_json(_doc())
    del data["note"]
    data["summary"]["best"] = None
    data["entries"]["b"]["value"] = "-inf"
    data["entries"]["b"]["seconds"] = 2  # an int where a float is declared
    back = from_json(Doc, data)
    assert back.note == "none" and back.best is None and back.entries["b"].value == -math.inf
    assert back.entries["b"].cost.seconds == 2.0 and type(back.entries["b"].cost.seconds) is float
    assert to_json(math.nan, strict=False) != to_json(math.nan) == "nan"
    assert math.isnan(to_json([math.nan], strict=False)[0])


def test_arrays_round_trip_and_constructor_errors_name_the_object():
    span = Span(np.array([0.0, 1.0]), np.array([2.0, 3.0]))
    assert to_json(span) == {"lo": [0.0, 1.0], "hi": [2.0, 3.0]}
    back = from_json(Span, to_json(span))
    assert back.lo.dtype == np.float64 and back.hi.tolist() == [2.0, 3.0]
    with pytest.raises(ValueError, match=r"^m\.json: span: hi < lo$"):
        from_json(Span, {"lo": [1.0], "hi": [0.0]}, "m.json: span")
    with pytest.raises(ValueError, match=r"^\$\.hi\[1\]: expected a number"):
        from_json(Span, {"lo": [1.0, 2.0], "hi": [3.0, "x"]})
    with pytest.raises(ValueError, match=r"^\$\.hi: expected a rectangular array"):
        from_json(Span, {"lo": [1.0, 2.0], "hi": [[3.0], 4.0]})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(kind="toy/v2"), "$.kind: expected 'toy/v1', got 'toy/v2'"),
        (lambda d: d.pop("flags"), "$: missing key 'flags'"),
        (lambda d: d["summary"].pop("score"), "$.summary: missing key 'score'"),
        (lambda d: d.update(summary=3), "$.summary: expected an object, got 3"),
        (lambda d: d["summary"].update(worst=1), "$.summary: unexpected key 'worst'"),
        (lambda d: d["entries"]["a"].update(extra=1), "$.entries.a: unexpected key 'extra'"),
        (lambda d: d["entries"]["a"].pop("passes"), "$.entries.a: missing key 'passes'"),
        (
            lambda d: d["entries"]["a"].update(passes=True),
            "$.entries.a.passes: expected an integer",
        ),
        (lambda d: d["entries"]["a"].update(passes=1.0), "$.entries.a.passes: expected an integer, got 1.0"),
        (lambda d: d["entries"]["b"].update(value="big"), "$.entries.b.value: expected a number"),
        (lambda d: d["entries"]["b"].update(value=False), "$.entries.b.value: expected a number"),
        (lambda d: d["entries"]["a"].update(tags="x"), "$.entries.a.tags: expected a list, got 'x'"),
        (lambda d: d["entries"]["a"].update(tags=["x", 1]), "$.entries.a.tags[1]: expected a string, got 1"),
        (lambda d: d["flags"].append(0), "$.flags[2]: expected true or false, got 0"),
        (lambda d: d.update(entries=[]), "$.entries: expected an object, got []"),
        (lambda d: d.update(local="x"), "$: unexpected key 'local'"),
    ],
)
def test_malformed_values_are_refused_naming_their_path(change, message):
    data = to_json(_doc())
    change(data)
    with pytest.raises(ValueError) as info:
        from_json(Doc, data)
    assert str(info.value).startswith(message)


def test_a_hint_without_json_form_is_a_programming_error():
    @dataclass
    class Either:
        value: int | str

    with pytest.raises(TypeError, match="only unions of one type with None"):
        from_json(Either, {"value": 1})
