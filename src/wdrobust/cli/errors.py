"""Turning bad input and operating-system failures into a one-line error and exit code 2; Ctrl-C into a
one-line notice and exit code 130; warnings into one ``warning: ...`` line on stderr."""

from __future__ import annotations

import functools
import sqlite3
import warnings
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console

P = ParamSpec("P")
R = TypeVar("R")

#: Errors reported in one line with exit code 2: wrong input (ValueError, raised explicitly for every
#: user mistake; a KeyError is a bug and keeps its traceback), and the OS refusing a file operation
#: (missing, read-only or full file systems, a folder where a file is expected, ...).
USER_ERRORS = (ValueError, OSError, sqlite3.Error)
#: Exit code of a command stopped by Ctrl-C (128 + SIGINT, as shells report it).
INTERRUPTED = 130

err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` on stderr and return the exit (code 2) to raise."""
    err_console.print(f"error: {message}", markup=False)
    return typer.Exit(code=2)


def interrupted(message: str) -> typer.Exit:
    """Print ``interrupted: message`` on stderr and return the exit (code 130) to raise."""
    err_console.print(f"interrupted: {message}", markup=False)
    return typer.Exit(code=INTERRUPTED)


def describe(exc: BaseException) -> str:
    """The first line of an error's message; an OSError as ``path: reason``."""
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        message = f"{exc.filename}: {exc.strerror}"
    elif isinstance(exc, sqlite3.Error):
        message = f"database error: {exc}"
    else:
        message = str(exc)
    return message.splitlines()[0] if message.strip() else type(exc).__name__


def warning_line(message: Warning | str, *_: object, **__: object) -> None:
    """Print a warning as one ``warning: ...`` line on stderr (a ``warnings.showwarning``)."""
    err_console.print(f"warning: {str(message).splitlines()[0]}", markup=False)


def user_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Decorate a CLI command so that USER_ERRORS become one line on stderr and exit code 2, and warnings
    one line on stderr each."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            with warnings.catch_warnings():
                warnings.showwarning = warning_line
                return func(*args, **kwargs)
        except USER_ERRORS as exc:
            raise fail(describe(exc)) from None

    return wrapper
