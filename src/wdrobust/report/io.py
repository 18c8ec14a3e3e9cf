"""Atomic writes of report outputs (text, strict JSON) through ``wdrobust._atomic.atomic_write``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from wdrobust._atomic import atomic_write


def write_text(path: str | Path, text: str) -> Path:
    """Write text atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def json_ready(value: Any) -> Any:
    """value with non-finite floats replaced by the strings "inf", "-inf", "nan" (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, float) and not (value == value and abs(value) != float("inf")):
        return "nan" if value != value else ("inf" if value > 0 else "-inf")
    return value


def write_json(path: str | Path, data: Any) -> Path:
    """Write strict, indented JSON atomically."""
    return write_text(path, json.dumps(json_ready(data), indent=2, allow_nan=False) + "\n")
