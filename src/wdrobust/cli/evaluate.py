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
from wdrobust.pipeline import EvalConfig, build_config, run
from wdrobust.pipeline.config import DEFAULT_OUT
from wdrobust.pipeline.distributed import rank_from_env, run_ranks
from wdrobust.pipeline.merge import MergeOutcome
from wdrobust.report import Rendered, render
from wdrobust.report.headline import headline


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
        help=f"{common.MODEL_HELP} Or 'digits-default' (cached after first use).",
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
        None,
        "--n",
        "-n",
        help=f"Number of samples: n samples of the split from --offset on (default {_default('n')}); "
        "write -n under torchrun, whose parser takes --n for its own --nnodes.",
    ),
    offset: int | None = typer.Option(
        None, help="Index of the first evaluated sample of the split (default 0); with --n, a slice."
    ),
    indices: str | None = typer.Option(
        None,
        help="File listing the sample indices to evaluate (text: integers separated by spaces, commas or "
        "lines; or .npy); replaces --offset, and --n becomes their number.",
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
    out: str | None = typer.Option(
        None,
        "--out",
        "-o",
        help="Run folder (default runs/<model stem>-<data stem>, e.g. runs/digits-mlp-digits; "
        f"{DEFAULT_OUT} for the default model on its default data).",
    ),
    force: bool = typer.Option(
        False,
        "--force",
        help="Start over: delete the results of the run in --out first (only wdrobust's files; other "
        "files stay).",
    ),
    quiet: bool = typer.Option(
        False,
        "--quiet",
        "-q",
        help=f"No progress display ({common.PROGRESS_HELP}); print only the output paths.",
    ),
    shard: str | None = typer.Option(
        None,
        help="Compute only shard I of K (I/K) of the run's units into --out; combine the shards' run "
        "folders with `wdrobust merge`. Under torchrun every rank takes its shard by itself.",
    ),
) -> None:
    """Evaluate a model: attack lower bounds and certified upper bounds for every (eps, p, loss).

    Re-running the same command resumes: finished (job, batch) units are not recomputed, also after
    Ctrl-C (exit code 130). Writes RUN/store.sqlite, RUN/run.log, RUN/results.json, RUN/report.md and
    RUN/plots/ (and RUN/run.lock: one evaluation at a time per run folder). Under
    `torchrun --nproc-per-node N --no-python wdrobust evaluate ...` the N ranks compute shards in
    RUN/shards/, and rank 0 merges them into RUN and reports.
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
        offset=offset,
        indices=indices,
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
        shard=shard,
    )
    check_device(cfg.device)
    rank = rank_from_env()
    console = Console(stderr=True)
    merged = None
    try:
        if rank is not None:
            outcome, merged = run_ranks(cfg, rank, force=force, console=console, finish=render)
        else:
            outcome = run(cfg, force=force, console=console, finish=None if cfg.shard else render)
    except KeyboardInterrupt:
        raise interrupted(f"re-run the same command to resume the run in {cfg.out}") from None
    if rank is not None and rank.rank != 0:
        return  # rank 0 reports for every rank
    if not cfg.quiet:
        typer.echo(
            f"computed {outcome.computed} units, resumed {outcome.resumed}, in {outcome.seconds:.1f} s "
            f"(log: {outcome.run_dir / 'run.log'})"
        )
    if cfg.shard is not None:
        typer.echo(f"shard {cfg.shard} stored in {outcome.run_dir}; combine the shards with `wdrobust merge`")
    elif merged is not None:
        print_merged(merged, headlines=not cfg.quiet)
    else:
        print_outputs(outcome.finished, headlines=not cfg.quiet)


def print_outputs(rendered: Rendered, headlines: bool = False) -> None:
    """Print the run's headline (``headlines``: ``report.headline``), then where each output was written,
    one line per label ("results:", "report:", "plots:", ...)."""
    for line in headline(rendered.document) if headlines else []:
        typer.echo(line)
    for label, paths in rendered.outputs.items():
        typer.echo(f"{label + ':':<8} {', '.join(str(p) for p in paths)}")


def print_merged(merged: MergeOutcome, headlines: bool = True) -> None:
    """Say what a merge did, list the units no shard has computed yet, and where the outputs are."""
    typer.echo(f"merged {merged.shards} run folders into {merged.run_dir}: {merged.copied} units copied")
    if merged.missing:
        shown = ", ".join(f"{job} batch {b}" for job, b in merged.missing[:5])
        more = f" and {len(merged.missing) - 5} more" if len(merged.missing) > 5 else ""
        typer.echo(f"missing {len(merged.missing)} units (no shard has them yet): {shown}{more}")
    if merged.finished is None:
        typer.echo("no report yet: the clean pass is incomplete; merge again when the shards have finished")
    else:
        print_outputs(merged.finished, headlines)
