"""Turning bad input into a one-line error and exit code 2."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console

P = ParamSpec("P")
R = TypeVar("R")

#: Errors that mean "the user's input is wrong": reported in one line, exit code 2.
USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, PermissionError)

err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` on stderr and return the exit (code 2) to raise."""
    err_console.print(f"error: {message}", markup=False)
    return typer.Exit(code=2)


def user_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Decorate a CLI command so that USER_ERRORS become one line on stderr and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except USER_ERRORS as exc:
            message = str(exc)
            raise fail(message.splitlines()[0] if message else type(exc).__name__) from None

    return wrapper
