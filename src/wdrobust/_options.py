"""``name=value`` items of repeated command-line options (``--option``, ``--arch-option``)."""

from __future__ import annotations


def split_assignment(item: str, flag: str) -> tuple[str, str]:
    """ "steps=20" -> ("steps", "20"): the name stripped, with '-' read as '_', and the raw value text;
    an item without '=' or without a name raises ValueError naming ``flag``."""
    key, sep, text = item.partition("=")
    name = key.strip().replace("-", "_")
    if not sep or not name:
        raise ValueError(f"{flag} must look like name=value, got {item!r}")
    return name, text
