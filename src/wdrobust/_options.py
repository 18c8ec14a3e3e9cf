"""Options: ``name=value`` items of repeated command-line options (``--option``, ``--arch-option``), numbers
written as text, and the declared options of attacks and certificates.

A method class declares its options as class data, ``declared = (Option(name, type, default, check, help),
...)``; ``option_table(cls)`` merges the declarations of the class and its bases (a subclass entry replaces
its base's entry of the same name), and ``resolve(table, given, owner)`` is the one place where given
values (Python values, TOML values or command-line text) are converted to the declared type, checked and
completed with the defaults.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

#: The types an option may declare: int, float, bool, str, tuple (of numbers, text "0.1,0.2") and dict (a
#: table: Python or TOML only, no text form).
TYPES = (int, float, bool, str, tuple, dict)
_TYPE_WORDS = {
    int: "an integer",
    float: "a number",
    bool: "true or false",
    str: "text",
    tuple: "numbers",
    dict: "a table",
}


def split_assignment(item: str, flag: str) -> tuple[str, str]:
    """ "steps=20" -> ("steps", "20"): the name stripped, with '-' read as '_', and the raw value text;
    an item without '=' or without a name raises ValueError naming ``flag``."""
    key, sep, text = item.partition("=")
    name = key.strip().replace("-", "_")
    if not sep or not name:
        raise ValueError(f"{flag} must look like name=value, got {item!r}")
    return name, text


def parse_number(value: float | int | str, what: str) -> float:
    """Parse a float, an int, ``"inf"`` or a fraction string such as ``"8/255"``."""
    if isinstance(value, str):
        text = value.strip().lower()
        try:
            number = math.inf if text in ("inf", "infinity") else float(Fraction(text))
        except (ValueError, ZeroDivisionError):
            raise ValueError(f"{what}: cannot parse {value!r} as a number") from None
        except OverflowError:
            raise ValueError(f"{what}: {value!r} overflows a float (write inf for infinity)") from None
    else:
        number = float(value)
    if math.isnan(number):
        raise ValueError(f"{what} is NaN")
    return number


@dataclass(frozen=True)
class Check:
    """A condition on an option's value, ``test(value) -> bool``, and the phrase ``text`` that states it
    after "must be" ("an integer >= 1", "one of probe, dual_norm")."""

    test: Callable[[Any], bool]
    text: str


def at_least(low: float) -> Check:
    """value >= low."""
    return Check(lambda v: v >= low, f">= {low:g}")


def positive() -> Check:
    """value > 0."""
    return Check(lambda v: v > 0, "> 0")


def fraction() -> Check:
    """0 < value <= 1."""
    return Check(lambda v: 0 < v <= 1, "in (0, 1]")


def one_of(*choices: str, text: str | None = None) -> Check:
    """value among the choices (text: the phrase, default "one of a, b, c")."""
    return Check(lambda v: v in choices, text or f"one of {', '.join(choices)}")


@dataclass(frozen=True)
class Option:
    """A declared option: its name, its type (one of TYPES), its default (None: derived by the method
    when not given, and then the only value outside the check), the check of a given value and a
    one-line help."""

    name: str
    type: type
    default: Any
    check: Check | None = None
    help: str = ""

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(
                f"option {self.name}: type must be one of {', '.join(t.__name__ for t in TYPES)}"
            )

    def value(self, given: Any, owner: str) -> Any:
        """given (a value of the type, an int for a float, or text) as the option's type, checked; None
        only when the default is None. ValueError naming the owner and the option otherwise."""
        if given is None and self.default is None:
            return None
        what = f"{owner}: option {self.name}"
        value = self._convert(given, what)
        if self.check is not None and not self.check.test(value):
            raise ValueError(f"{what} must be {self.check.text}, got {given!r}")
        return value

    def _convert(self, given: Any, what: str) -> Any:
        """given as the declared type (text parsed; an int accepted for a float; numbers for a tuple from
        a sequence, an array or "0.1,0.2"); ValueError naming ``what`` for anything else."""
        kind, text, flag = self.type, isinstance(given, str), isinstance(given, bool)
        if kind is bool and (flag or (text and given.strip().lower() in ("true", "false"))):
            return given if flag else given.strip().lower() == "true"
        if kind is str and text:
            return given
        if kind is dict and isinstance(given, Mapping):
            return dict(given)
        number = not flag  # True is an int to Python, not to an option
        if (
            number
            and kind is int
            and (isinstance(given, int) or (text and given.strip().lstrip("+-").isdigit()))
        ):
            return int(given)
        if number and kind is float and (text or isinstance(given, int | float)):
            return parse_number(given, what)
        if number and kind is tuple and (text or isinstance(given, Sequence) or hasattr(given, "tolist")):
            items = given.split(",") if text else given.tolist() if hasattr(given, "tolist") else given
            return tuple(parse_number(v, what) for v in items)
        raise ValueError(f"{what} expects {_TYPE_WORDS[kind]}, got {given!r}")

    def describe(self) -> str:
        """One line for help texts: "steps (int, default 20, >= 1): gradient steps per radius"."""
        facts = [
            self.type.__name__,
            "derived by default" if self.default is None else f"default {self.default!r}",
        ]
        if self.check is not None:
            facts.append(self.check.text)
        return f"{self.name} ({', '.join(facts)}): {self.help}"

    def with_default(self, default: Any) -> Option:
        """The same option with another default (a subclass that changes it)."""
        return replace(self, default=default)


def option_table(cls: type, attribute: str = "declared") -> dict[str, Option]:
    """The options declared by cls and its bases (``attribute`` of each class body), base first; a
    subclass entry replaces the base entry of the same name in place."""
    table: dict[str, Option] = {}
    for klass in reversed(cls.__mro__):
        for option in vars(klass).get(attribute, ()):
            table[option.name] = option
    return table


def pick(table: Mapping[str, Option], *names: str, **defaults: Any) -> tuple[Option, ...]:
    """The named options of a table (another method's declaration), those in ``defaults`` with that
    default instead."""
    chosen = (*names, *(n for n in defaults if n not in names))
    return tuple(table[n].with_default(defaults[n]) if n in defaults else table[n] for n in chosen)


def convert(table: Mapping[str, Option], given: Mapping[str, Any], owner: str) -> dict[str, Any]:
    """The given options converted and checked (``Option.value``); a name not in the table raises
    ValueError naming the owner and listing the accepted ones."""
    for name in given:
        if name not in table:
            accepted = ", ".join(table) or "none"
            raise ValueError(f"{owner} has no option {name!r}: accepted {accepted}")
    return {name: table[name].value(value, owner) for name, value in given.items()}


def resolve(table: Mapping[str, Option], given: Mapping[str, Any], owner: str) -> dict[str, Any]:
    """Every option of the table: the given value (``convert``) or the default."""
    return {name: option.default for name, option in table.items()} | convert(table, given, owner)


def describe(table: Mapping[str, Option]) -> str:
    """The table as lines of ``Option.describe`` ("none" when empty), for help texts and listings."""
    return "\n".join(option.describe() for option in table.values()) or "none"


def check_table(table: Mapping[str, Option], owner: str) -> None:
    """The declarations' contract: every option has an identifier name and a help line, and a default
    that is None (derived) or passes its own declaration unchanged; AssertionError naming the owner."""
    for name, option in table.items():
        if not name.isidentifier() or name != option.name or not option.help:
            raise AssertionError(f"{owner}: option {name!r} needs an identifier name and a help line")
        if option.default is None:
            continue
        try:
            same = option.value(option.default, owner) == option.default
        except ValueError as exc:
            raise AssertionError(
                f"{owner}: the default of option {name} fails its declaration: {exc}"
            ) from None
        if not same:
            raise AssertionError(f"{owner}: the default of option {name} is not of its type")
