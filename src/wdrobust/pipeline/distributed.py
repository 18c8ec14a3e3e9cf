"""Multi-process evaluation under torchrun (torch.distributed): every rank computes one shard.

    torchrun --nproc-per-node N --no-python wdrobust evaluate ARGS

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK. Rank r (0-based) of W computes shard r+1/W of the run
(``jobs.units``) into its own run folder ``OUT/shards/rank-{r+1}-of-{W}`` (its own SQLite store: no store
is written by two processes), on ``cuda:LOCAL_RANK`` when CUDA is present (NCCL) and on the CPU
otherwise (gloo). After a barrier, rank 0 merges the shards into OUT (``merge.merge``) and reports. A
killed rank leaves its finished units in its shard; the same command resumes every shard. Multi-node
runs use torchrun's own ``--nnodes``/``--rdzv-*`` options; the shard folders must then lie on a
filesystem that rank 0 can read.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from rich.console import Console

from wdrobust.pipeline.config import EvalConfig
from wdrobust.pipeline.folder import SHARDS_DIR
from wdrobust.pipeline.merge import MergeOutcome, merge
from wdrobust.pipeline.runner import RunOutcome, check_run_folder, run

#: How long a finished rank waits at the barrier for the slowest one (shards of a long run may finish
#: hours apart; torchrun stops every rank at once if one fails).
BARRIER_TIMEOUT = timedelta(days=7)


@dataclass(frozen=True)
class Rank:
    """This process's place in a torchrun job: rank (0-based), world size, local rank on its node."""

    rank: int
    world: int
    local: int

    @property
    def shard(self) -> str:
        """The shard this rank computes, "I/K" (1-based)."""
        return f"{self.rank + 1}/{self.world}"

    def folder(self, out: str | Path) -> Path:
        """The rank's own run folder under the run folder ``out``."""
        return Path(out) / SHARDS_DIR / f"rank-{self.rank + 1}-of-{self.world}"


def rank_from_env(environ: Mapping[str, str] = os.environ) -> Rank | None:
    """The Rank torchrun describes in the environment, or None outside torchrun or with one process.
    Malformed values raise ValueError."""
    if int(environ.get("WORLD_SIZE", "1") or 1) <= 1:
        return None
    try:
        rank = Rank(int(environ["RANK"]), int(environ["WORLD_SIZE"]), int(environ.get("LOCAL_RANK", "0")))
    except (KeyError, ValueError):
        raise ValueError(
            "WORLD_SIZE > 1 but RANK/LOCAL_RANK are missing or not integers: start with torchrun"
        ) from None
    if not 0 <= rank.rank < rank.world:
        raise ValueError(f"RANK {rank.rank} outside 0 .. WORLD_SIZE - 1 = {rank.world - 1}")
    return rank


def rank_device(device: str | None, local: int) -> str:
    """cuda:LOCAL_RANK when CUDA is present and the configuration does not ask for the CPU (or a device of
    its own); cpu otherwise."""
    if device in (None, "cuda") and torch.cuda.is_available():
        return f"cuda:{local}"
    return "cpu" if device is None else device


def run_ranks(
    cfg: EvalConfig,
    rank: Rank,
    *,
    force: bool = False,
    console: Console | None = None,
    finish: Callable[[Path], Any] | None = None,
) -> tuple[RunOutcome, MergeOutcome | None]:
    """Compute this rank's shard, wait for every rank, then (rank 0) merge the shards into ``cfg.out`` and
    call ``finish`` there. Returns this rank's RunOutcome and, on rank 0, the MergeOutcome."""
    if cfg.shard is not None:
        raise ValueError("--shard and torchrun both split the run: give one of them")
    check_run_folder(dataclasses.replace(cfg, shard=None), force)  # refuse a wrong --out before any work
    device = rank_device(cfg.device, rank.local)
    if device.startswith("cuda"):
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.startswith("cuda") else "gloo", timeout=BARRIER_TIMEOUT)
    try:
        own = dataclasses.replace(
            cfg,
            out=str(rank.folder(cfg.out)),
            shard=rank.shard,
            device=device,
            quiet=cfg.quiet or rank.rank != 0,
        )
        outcome = run(own, force=force, console=console)
        dist.barrier()
        merged = None
        if rank.rank == 0:
            folders = [Rank(r, rank.world, 0).folder(cfg.out) for r in range(rank.world)]
            merged = merge(folders, cfg.out, force=force, finish=finish)
        return outcome, merged
    finally:
        dist.destroy_process_group()
