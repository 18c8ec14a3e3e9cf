"""Declared options (``wdrobust._options``): conversion of Python, TOML and command-line values, checks,
defaults, merging over a class hierarchy, and the declarations' own contract."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

from wdrobust._options import (
    Option,
    at_least,
    check_table,
    convert,
    fraction,
    one_of,
    option_table,
    parse_number,
    pick,
    positive,
    resolve,
)

TABLE = {
    o.name: o
    for o in (
        Option("steps", int, 20, at_least(1), "steps"),
        Option("size", float, None, positive(), "size (derived)"),
        Option("rule", str, "a", one_of("a", "b"), "rule"),
        Option("flag", bool, True, None, "flag"),
        Option("radii", tuple, None, None, "radii"),
        Option("share", float, 0.5, fraction(), "share"),
        Option("table", dict, None, None, "table"),
    )
}


def test_values_of_every_type_from_python_and_from_text() -> None:
    given = {"steps": "7", "size": "1/4", "rule": "b", "flag": "False", "radii": "0.1, 0.5", "share": 1}
    assert convert(TABLE, given, "m") == {
        "steps": 7,
        "size": 0.25,
        "rule": "b",
        "flag": False,
        "radii": (0.1, 0.5),
        "share": 1.0,
    }
    assert convert(TABLE, {"radii": np.array([0.2, 0.3]), "table": {"mode": "x"}}, "m") == {
        "radii": (0.2, 0.3),
        "table": {"mode": "x"},
    }
    assert resolve(TABLE, {"steps": 3}, "m") == {
        "steps": 3,
        "size": None,
        "rule": "a",
        "flag": True,
        "radii": None,
        "share": 0.5,
        "table": None,
    }
    assert parse_number("8/255", "eps") == pytest.approx(8 / 255)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"steps": 0}, "m: option steps must be >= 1, got 0"),
        ({"steps": 2.5}, "m: option steps expects an integer, got 2.5"),
        ({"steps": True}, "m: option steps expects an integer, got True"),
        ({"size": "fast"}, "m: option size: cannot parse 'fast' as a number"),
        ({"size": None}, None),  # a derived default may be given as None
        ({"steps": None}, "m: option steps expects an integer, got None"),
        ({"rule": "c"}, "m: option rule must be one of a, b, got 'c'"),
        ({"flag": "maybe"}, "m: option flag expects true or false"),
        ({"share": 0}, r"m: option share must be in \(0, 1\], got 0"),
        ({"table": "x=1"}, "m: option table expects a table"),
        ({"nope": 1}, "m has no option 'nope': accepted steps, size, rule, flag, radii, share, table"),
    ],
)
def test_bad_values_raise_one_line_errors(given: dict, message: str | None) -> None:
    if message is None:
        assert convert(TABLE, given, "m") == given
        return
    with pytest.raises(ValueError, match=message):
        convert(TABLE, given, "m")


class Base:
    declared: ClassVar = (
        Option("k", int, 3, at_least(1), "k"),
        Option("steps", int, 20, at_least(1), "steps"),
    )


class Child(Base):
    declared: ClassVar = (Option("extra", str, "x", None, "extra"), Base.declared[0].with_default(9))


def test_tables_merge_over_the_class_hierarchy_and_pick_takes_other_declarations() -> None:
    table = option_table(Child)
    assert list(table) == ["k", "steps", "extra"] and table["k"].default == 9
    assert option_table(Base)["k"].default == 3
    picked = pick(option_table(Base), "steps", k=5)
    assert [(o.name, o.default) for o in picked] == [("steps", 20), ("k", 5)]
    assert table["steps"].describe() == "steps (int, default 20, >= 1): steps"


def test_the_declarations_contract() -> None:
    check_table(TABLE, "m")
    for bad, message in [
        (Option("steps", int, 0, at_least(1), "steps"), "the default of option steps fails"),
        (Option("steps", int, 2.5, None, "steps"), "the default of option steps fails"),
        (Option("steps", int, 2, None, ""), "needs an identifier name and a help line"),
    ]:
        with pytest.raises(AssertionError, match=f"m: .*{message}"):
            check_table({"steps": bad}, "m")
    with pytest.raises(ValueError, match="type must be one of"):
        Option("x", list, [], None, "x")
