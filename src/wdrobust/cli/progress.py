"""The progress bar of the long-running subcommands (train, attack, certify): rich, on stderr, with the
elapsed time and an ETA; off with --quiet and when stderr is not a terminal."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.progress import Progress

from wdrobust._progress import columns
from wdrobust.cli.errors import err_console

#: A progress callback: (done, total) after each step, or (done, total, label) to rename the task.
Advance = Callable[..., None]


@contextlib.contextmanager
def bar(description: str, quiet: bool, unit: str = "") -> Iterator[Advance]:
    """A progress bar "description [===>   ] done/total unit  elapsed  eta ..." for the block; yields
    advance(done, total, label=None), which also sets the bar's total and (with label) its description."""
    with Progress(
        *columns(unit), console=err_console, disable=quiet or not err_console.is_terminal
    ) as progress:
        task = progress.add_task(description, total=None)

        def advance(done: int, total: int, label: str | None = None) -> None:
            extra = {} if label is None else {"description": label}
            progress.update(task, completed=done, total=total, **extra)

        yield advance
