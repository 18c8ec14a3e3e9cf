"""A validator for the subset of JSON Schema that docs/results.schema.json uses (no dependency): type,
properties, required, additionalProperties, items, enum, const, anyOf, $ref into $defs, minimum, pattern.
An unknown keyword is an error, so that the schema cannot use a check this validator would skip."""

from __future__ import annotations

import re
from typing import Any

ANNOTATIONS = {"$schema", "$id", "$defs", "title", "description"}
TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def errors(
    value: Any, schema: dict[str, Any], root: dict[str, Any] | None = None, where: str = "$"
) -> list[str]:
    """Every violation of ``schema`` by ``value``, as 'path: what' lines (empty: valid)."""
    root = schema if root is None else root
    out: list[str] = []
    for key, rule in schema.items():
        if key in ANNOTATIONS:
            continue
        if key == "$ref":
            target = root
            for part in rule.removeprefix("#/").split("/"):
                target = target[part]
            out += errors(value, target, root, where)
        elif key == "type":
            names = [rule] if isinstance(rule, str) else rule
            if not any(TYPES[t](value) for t in names):
                out.append(f"{where}: {value!r} is not of type {rule}")
        elif key == "enum":
            if value not in rule or any(type(value) is not type(r) for r in rule if r == value):
                out.append(f"{where}: {value!r} not in {rule}")
        elif key == "const":
            if value != rule or type(value) is not type(rule):
                out.append(f"{where}: {value!r} != {rule!r}")
        elif key == "anyOf":
            if all(errors(value, s, root, where) for s in rule):
                out.append(f"{where}: {value!r} matches none of {rule}")
        elif key == "minimum":
            if TYPES["number"](value) and value < rule:
                out.append(f"{where}: {value!r} < {rule}")
        elif key == "pattern":
            if isinstance(value, str) and re.search(rule, value) is None:
                out.append(f"{where}: {value!r} does not match {rule}")
        elif key == "required":
            if isinstance(value, dict):
                out += [f"{where}: missing {k!r}" for k in rule if k not in value]
        elif key == "properties":
            if isinstance(value, dict):
                for k, s in rule.items():
                    if k in value:
                        out += errors(value[k], s, root, f"{where}.{k}")
        elif key == "additionalProperties":
            if isinstance(value, dict):
                for k, v in value.items():
                    if k in schema.get("properties", {}):
                        continue
                    if rule is False:
                        out.append(f"{where}: unexpected key {k!r}")
                    elif rule is not True:
                        out += errors(v, rule, root, f"{where}.{k}")
        elif key == "items":
            if isinstance(value, list):
                for i, v in enumerate(value):
                    out += errors(v, rule, root, f"{where}[{i}]")
        else:
            raise ValueError(f"{where}: schema keyword {key!r} is not supported by this validator")
    return out
