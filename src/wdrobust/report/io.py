"""Atomic writes of report outputs (text, strict JSON) through ``wdrobust._atomic.atomic_write``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from wdrobust._atomic import atomic_write
from wdrobust._serde import to_json


def write_text(path: str | Path, text: str) -> Path:
    """Write text atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def write_json(path: str | Path, data: Any) -> Path:
    """Write strict, indented JSON atomically (``_serde.to_json``: non-finite floats as "inf", "-inf",
    "nan")."""
    return write_text(path, json.dumps(to_json(data), indent=2, allow_nan=False) + "\n")
