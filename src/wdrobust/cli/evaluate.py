"""`wdrobust evaluate`: run attacks and certificates into a resumable run folder, then write the report.

With no arguments it evaluates the bundled digits default (configs/digits-default.toml). Flags override
a ``--config`` TOML file, which overrides the defaults.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from wdrobust._device import check_device
from wdrobust.cli import common
from wdrobust.cli.errors import interrupted, user_errors
from wdrobust.evaluate import EvalConfig, build_config, run
from wdrobust.report import Rendered, render


def _default(name: str) -> str:
    """The EvalConfig default of a field as the user would type it (lists comma-separated)."""
    value = getattr(EvalConfig(), name)
    return ",".join(value) if isinstance(value, tuple) else str(value)


@user_errors
def command(
    config: Path | None = typer.Option(
        None, "--config", "-c", help="TOML file with the settings (flags override it)."
    ),
    model: str | None = typer.Option(
        None,
        help="Checkpoint path (safetensors + JSON sidecar, or a .pt/.pth state_dict with --arch) or "
        "'digits-default' (cached after first use).",
    ),
    arch: str | None = common.ARCH,
    arch_option: list[str] = common.ARCH_OPTION,
    mean: str | None = common.MEAN,
    std: str | None = common.STD,
    label: str | None = typer.Option(None, help="A name for the model in results.json and the report."),
    keep_points: bool = typer.Option(
        False, "--keep-points", help="Store the attacks' candidate points (the worst-case image grid)."
    ),
    data: str | None = typer.Option(None, help=f"Data set: {common.DATA_HELP}"),
    data_root: str | None = typer.Option(None, "--root", "--data-root", help=common.ROOT_HELP),
    split: str | None = typer.Option(None, help="Split to evaluate: test (default) or train."),
    n: int | None = typer.Option(
        None, "--n", help=f"Number of samples: the first n of the split (default {_default('n')})."
    ),
    batch_size: int | None = typer.Option(
        None, help=f"Samples per unit of work (and of storage/resumption) (default {_default('batch_size')})."
    ),
    norm: str | None = typer.Option(None, help=f"Threat norm: linf, l2 or l1 (default {_default('norm')})."),
    eps: str | None = typer.Option(
        None, help=f"Comma-separated radii, fractions allowed (8/255) (default {_default('eps')})."
    ),
    p: str | None = typer.Option(
        None, "--p", help=f"Comma-separated Wasserstein orders >= 1 or inf (default {_default('p')})."
    ),
    losses: str | None = typer.Option(
        None, help=f"Comma-separated losses: ce, margin, dlr, zero_one (default {_default('losses')})."
    ),
    attacks: str | None = typer.Option(
        None, help=f"Comma-separated attacks (lower bounds) (default {_default('attacks')})."
    ),
    certificates: str | None = typer.Option(
        None,
        help=f"Comma-separated certificates (upper bounds) (default {_default('certificates')}).",
    ),
    seed: int | None = typer.Option(
        None, help=f"Random seed; each (job, batch) unit derives its own (default {_default('seed')})."
    ),
    device: str | None = typer.Option(None, help="cpu or cuda (default: cuda if available)."),
    threads: int | None = typer.Option(
        None,
        help=f"CPU threads for torch; 0 = all cores (default {_default('threads')}, best for small models).",
    ),
    out: str | None = typer.Option(None, "--out", "-o", help=f"Run folder (default {_default('out')})."),
    force: bool = typer.Option(
        False,
        "--force",
        help="Start over: delete the run in --out first (only wdrobust's files; other files stay).",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar; print only the output paths."),
) -> None:
    """Evaluate a model: attack lower bounds and certified upper bounds for every (eps, p, loss).

    Re-running the same command resumes: finished (job, batch) units are not recomputed, also after
    Ctrl-C (exit code 130). Writes RUN/store.sqlite, RUN/run.log, RUN/results.json, RUN/report.md and
    RUN/plots/ (and RUN/run.lock: one evaluation at a time per run folder).
    """
    cfg = build_config(
        config,
        model=model,
        arch=arch,
        arch_options=common.arch_options(arch, arch_option) or None,
        mean=mean,
        std=std,
        label=label,
        keep_points=keep_points or None,
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
    check_device(cfg.device)
    try:
        outcome = run(cfg, force=force, console=Console(stderr=True), finish=render)
    except KeyboardInterrupt:
        raise interrupted(f"re-run the same command to resume the run in {cfg.out}") from None
    rendered = outcome.finished
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
