"""The progress of the long-running subcommands (train, attack, certify) on stderr: a rich bar on a
terminal, timestamped plain lines every $WDROBUST_PROGRESS_INTERVAL seconds (default 10) elsewhere
(``wdrobust._progress``); nothing with --quiet."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from wdrobust._progress import progress
from wdrobust.cli.errors import err_console

#: A progress callback: (done, total) after each step, or (done, total, label) to rename the task.
Advance = Callable[..., None]


@contextlib.contextmanager
def bar(description: str, quiet: bool, unit: str = "") -> Iterator[Advance]:
    """The progress of the block, "description done/total unit, elapsed, eta"; yields
    advance(done, total, label=None), which also sets the total and (with label) the description."""
    with progress(description, quiet=quiet, console=err_console, unit=unit) as update:
        yield update
