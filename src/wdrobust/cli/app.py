"""The typer application: one module per subcommand, registered here."""

from __future__ import annotations

import typer

from wdrobust import __version__
from wdrobust.cli import attack, certify, evaluate, merge, report, train, verify

app = typer.Typer(
    name="wdrobust",
    help="Wasserstein distributional robustness: attack lower bounds and certified upper bounds.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"wdrobust {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Wasserstein distributional robustness of neural-network classifiers."""


app.command("train")(train.command)
app.command("attack")(attack.command)
app.command("certify")(certify.command)
app.command("evaluate")(evaluate.command)
app.command("merge")(merge.command)
app.command("report")(report.command)
app.command("verify")(verify.command)


def main() -> None:
    """Entry point of the ``wdrobust`` script."""
    app()
