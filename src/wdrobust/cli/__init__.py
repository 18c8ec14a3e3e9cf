"""The ``wdrobust`` command-line interface (typer)."""

from wdrobust.cli.app import app, main

__all__ = ["app", "main"]
