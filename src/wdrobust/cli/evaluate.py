"""`wdrobust evaluate`: run attacks and certificates into a resumable run folder, then write the report.

With no arguments it evaluates the bundled digits default (configs/digits-default.toml). Flags override
a ``--config`` TOML file, which overrides the defaults.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from wdrobust.cli.errors import user_errors
from wdrobust.evaluate import build_config, run
from wdrobust.report import Rendered, render


@user_errors
def command(
    config: Path | None = typer.Option(
        None, "--config", "-c", help="TOML file with the settings (flags override it)."
    ),
    model: str | None = typer.Option(
        None,
        help="Checkpoint path (safetensors + JSON sidecar) or 'digits-default' (cached after first use).",
    ),
    data: str | None = typer.Option(
        None, help="Data set: digits, mnist, cifar10, cifar100, or a .npz/.csv file."
    ),
    data_root: str | None = typer.Option(None, help="Folder holding the data files (mnist, cifar)."),
    split: str | None = typer.Option(None, help="Split to evaluate: test (default) or train."),
    n: int | None = typer.Option(
        None, "--n", help="Number of samples: the first n of the split (default 450)."
    ),
    batch_size: int | None = typer.Option(
        None, help="Samples per unit of work (and of storage/resumption) (default 150)."
    ),
    norm: str | None = typer.Option(None, help="Threat norm: linf, l2 or l1 (default linf)."),
    eps: str | None = typer.Option(
        None, help="Comma-separated radii, fractions allowed (8/255) (default 0.005,0.01,0.02,0.03)."
    ),
    p: str | None = typer.Option(
        None, "--p", help="Comma-separated Wasserstein orders >= 1 or inf (default 1,2,inf)."
    ),
    losses: str | None = typer.Option(
        None, help="Comma-separated losses: ce, margin, dlr, zero_one (default ce,margin,zero_one)."
    ),
    attacks: str | None = typer.Option(
        None, help="Comma-separated attacks (lower bounds) (default pgd,apgd,wda,wda++)."
    ),
    certificates: str | None = typer.Option(
        None,
        help="Comma-separated certificates (upper bounds) (default global,first-order,local,cell,radius).",
    ),
    seed: int | None = typer.Option(
        None, help="Random seed; each (job, batch) unit derives its own (default 0)."
    ),
    device: str | None = typer.Option(None, help="cpu or cuda (default: cuda if available)."),
    threads: int | None = typer.Option(
        None, help="CPU threads for torch (default 1, fastest for small models; 0 = all cores)."
    ),
    out: str | None = typer.Option(None, "--out", "-o", help="Run folder (default runs/digits-default)."),
    force: bool = typer.Option(False, "--force", help="Start over: delete the existing run in --out first."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar; print only the output paths."),
) -> None:
    """Evaluate a model: attack lower bounds and certified upper bounds for every (eps, p, loss).

    Re-running the same command resumes: finished (job, batch) units are not recomputed.
    Writes RUN/store.sqlite, RUN/run.log, RUN/results.json, RUN/report.md and RUN/plots/.
    """
    cfg = build_config(
        config,
        model=model,
        data=data,
        data_root=data_root,
        split=split,
        n=n,
        batch_size=batch_size,
        norm=norm,
        eps=eps,
        p=p,
        losses=losses,
        attacks=attacks,
        certificates=certificates,
        seed=seed,
        device=device,
        threads=threads,
        out=out,
        quiet=quiet or None,
    )
    outcome = run(cfg, force=force, console=Console(stderr=True))
    rendered = render(outcome.run_dir)
    if not cfg.quiet:
        typer.echo(
            f"computed {outcome.computed} units, resumed {outcome.resumed}, in {outcome.seconds:.1f} s "
            f"(log: {outcome.run_dir / 'run.log'})"
        )
    print_outputs(rendered)


def print_outputs(rendered: Rendered) -> None:
    """Print where results.json, report.md and the plots were written."""
    typer.echo(f"results: {rendered.results}")
    typer.echo(f"report:  {rendered.report}")
    typer.echo(f"plots:   {', '.join(str(p) for p in rendered.plots)}")
