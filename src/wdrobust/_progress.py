"""Progress of every long-running wdrobust command, on a terminal and off it.

On a terminal: a rich bar "description [===>   ] done/total unit  elapsed  eta H:MM:SS", redrawn ten
times a second, so its elapsed clock moves inside one slow step too. Elsewhere (a pipe, a file, CI,
nohup), where a bar would print nothing until the end: one plain line every ``interval()`` seconds,
"[HH:MM:SS] description: done/total unit, elapsed H:MM:SS, eta H:MM:SS", written by a timer thread so
that a line comes also while one step takes minutes (the eta is left out until a step has finished),
and a last line when the block ends (only for blocks that printed one before: a quick command stays
silent). ``quiet`` silences both.

Inside one slow step: code deep in a step (a certificate's phase, the bound engine's layer, branch and
bound's domain count) names what it is doing with ``stage(text)``; both forms show the current stages
after their count, "[crown balls > layer 5/21]", so a step of minutes is not a frozen line.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

#: The environment variable that sets the seconds between two plain progress lines.
INTERVAL_ENV = "WDROBUST_PROGRESS_INTERVAL"
#: Seconds between two plain progress lines when INTERVAL_ENV is not set.
DEFAULT_INTERVAL = 10.0

#: A progress callback: update(done, total=None, label=None) sets the steps done, the total (when
#: given) and the description (when a label is given).
Update = Callable[..., None]

#: The stack of what the running step is doing now (``stage``); read by the progress displays.
_STAGES: list[str] = []


@contextlib.contextmanager
def stage(text: str) -> Iterator[Callable[[str], None]]:
    """Within the block the progress displays show text after their count, nested stages joined by
    " > "; yields set(text), which replaces the block's text (e.g. a counter "layer 5/21")."""
    _STAGES.append(text)
    depth = len(_STAGES) - 1

    def set_text(new: str) -> None:
        if depth < len(_STAGES):
            _STAGES[depth] = new

    try:
        yield set_text
    finally:
        del _STAGES[depth:]


def current_stage() -> str:
    """The stages of the running step, outermost first, joined by " > " ("" outside any)."""
    return " > ".join(list(_STAGES))


class StageColumn(ProgressColumn):
    """The bar's column of ``current_stage()`` in brackets (redrawn with the bar, ten times a second)."""

    def render(self, task: Task) -> Text:
        now = current_stage()
        return Text(f"[{now}]" if now else "")


def eta_text(started: float, last_step: float | None, done: int, total: int | None, now: float) -> str:
    """The eta of a block started at ``started`` whose ``done``-th of ``total`` steps finished at
    ``last_step`` (monotonic seconds): remaining = (last_step - started) / done * (total - done) -
    (now - last_step), as H:MM:SS; "unknown (longer than the average step)" once that estimate is used up
    while steps remain (never a false 0:00:00 while work goes on); "" before a step has finished."""
    if not done or not total or last_step is None:
        return ""
    per_step = (last_step - started) / done
    remaining = per_step * (total - done) - (now - last_step)
    if remaining < 1 and done < total:
        return "unknown (longer than the average step)"
    return _clock(max(remaining, 0))


class EtaColumn(ProgressColumn):
    """The bar's "eta ..." column by ``eta_text`` (rich's own estimate freezes at 0:00:00 in a slow
    step); the task's field ``last_step`` is when its count last grew."""

    def render(self, task: Task) -> Text:
        if task.start_time is None:
            return Text("")
        total = None if task.total is None else int(task.total)
        now = task.get_time()
        text = eta_text(task.start_time, task.fields.get("last_step"), int(task.completed), total, now)
        return Text(f"eta {text}" if text else "")


def columns(unit: str = "") -> tuple[ProgressColumn, ...]:
    """The columns "description [===>   ] done/total unit  elapsed  eta H:MM:SS [stage]" (no unit
    column without a unit)."""
    return (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *((TextColumn(unit),) if unit else ()),
        TimeElapsedColumn(),
        EtaColumn(),
        StageColumn(),
    )


def interval() -> float:
    """Seconds between two plain progress lines: $WDROBUST_PROGRESS_INTERVAL, else DEFAULT_INTERVAL;
    ValueError for a value that is not a positive number."""
    text = os.environ.get(INTERVAL_ENV)
    if text is None:
        return DEFAULT_INTERVAL
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise ValueError(f"${INTERVAL_ENV} must be a positive number of seconds, got {text!r}")
    return value


def _clock(seconds: float) -> str:
    """H:MM:SS of a duration (whole seconds)."""
    return str(timedelta(seconds=int(seconds)))


class PlainProgress:
    """The plain lines of the module docstring: ``update`` records the state, a daemon thread prints it
    every ``every`` seconds between ``start`` and ``stop``."""

    def __init__(self, console: Console, description: str, unit: str = "", every: float = DEFAULT_INTERVAL):
        self.console, self.description, self.unit, self.every = console, description, unit, every
        self.done, self.total = 0, None
        self.started = time.monotonic()
        self.last_step: float | None = None  # when ``done`` last grew
        self.printed = 0
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._tick, name="wdrobust-progress", daemon=True)

    def update(self, done: int, total: int | None = None, label: str | None = None) -> None:
        with self._lock:
            if done > self.done:
                self.last_step = time.monotonic()
            self.done = done
            self.total = total if total is not None else self.total
            self.description = label if label is not None else self.description

    def line(self) -> str:
        """The line "[HH:MM:SS] description: done/total unit, elapsed H:MM:SS[, eta H:MM:SS][ [stage]]",
        the eta from the average time per finished step, shown once a step has finished ("unknown" once
        the running step has outlasted that estimate: never a false 0:00:00 while work goes on)."""
        with self._lock:
            elapsed = time.monotonic() - self.started
            count = f"{self.done}/{self.total}" if self.total is not None else f"{self.done}"
            unit = f" {self.unit}" if self.unit else ""
            text = f"{self.description}: {count}{unit}, elapsed {_clock(elapsed)}"
            eta = eta_text(self.started, self.last_step, self.done, self.total, time.monotonic())
            if eta:
                text += f", eta {eta}"
        now = current_stage()
        if now:
            text += f" [{now}]"
        return f"[{time.strftime('%H:%M:%S')}] {text}"

    def emit(self) -> None:
        """Print the current line."""
        self.console.print(self.line(), markup=False, highlight=False, soft_wrap=True)
        self.printed += 1

    def _tick(self) -> None:
        while not self._stopped.wait(self.every):
            self.emit()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop the timer; print the last line when a line was printed before."""
        self._stopped.set()
        self._thread.join()
        if self.printed:
            self.emit()


@contextlib.contextmanager
def progress(
    description: str, *, quiet: bool = False, console: Console | None = None, unit: str = ""
) -> Iterator[Update]:
    """Show the progress of the block (module docstring) on ``console`` (default: stderr); yields
    update(done, total=None, label=None)."""
    console = console or Console(stderr=True)
    if quiet:
        yield lambda done, total=None, label=None: None
    elif console.is_terminal:
        with Progress(*columns(unit), console=console) as bar:
            task = bar.add_task(description, total=None)

            def update(done: int, total: int | None = None, label: str | None = None) -> None:
                extra = {} if label is None else {"description": label}
                if done > next(t.completed for t in bar.tasks if t.id == task):
                    extra["last_step"] = bar.get_time()
                bar.update(task, completed=done, **({} if total is None else {"total": total}), **extra)

            yield update
    else:
        plain = PlainProgress(console, description, unit, interval())
        plain.start()
        try:
            yield plain.update
        finally:
            plain.stop()
