"""`wdrobust evaluate` (not implemented yet)."""

from __future__ import annotations

from wdrobust.cli.errors import fail


def command() -> None:
    """Not implemented yet."""
    raise fail("wdrobust evaluate is not implemented yet")
