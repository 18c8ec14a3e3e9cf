"""The columns of every wdrobust progress bar (rich): description, bar, done/total, unit, elapsed, ETA."""

from __future__ import annotations

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def columns(unit: str = "") -> tuple[ProgressColumn, ...]:
    """The columns "description [===>   ] done/total unit  elapsed  eta remaining" (no unit column
    without a unit)."""
    return (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *((TextColumn(unit),) if unit else ()),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
