"""Merging run folders: the shards of one evaluation (``--shard I/K``, or the ranks of a torchrun) into
one run folder, which then aggregates and reports as an unsharded run would.

The shards must hold the same configuration (hash of the canonical configuration) and the same data
facts (model checkpoint and evaluated samples, by SHA-256); otherwise nothing is written. The target is
a new folder, or a merged folder of the same run (merging is idempotent and can be repeated as shards
finish: units already there are kept, new ones are copied). Units no shard has computed yet are listed.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wdrobust._atomic import check_folder_writable
from wdrobust._serde import from_json, to_json
from wdrobust.pipeline import config as config_mod
from wdrobust.pipeline import folder
from wdrobust.pipeline.config import EvalConfig
from wdrobust.pipeline.jobs import plan, units
from wdrobust.pipeline.jobs.plan import PARTS_META, Layout
from wdrobust.pipeline.runner import check_run_folder
from wdrobust.pipeline.store import STORE_NAME, Store, read_meta, store_errors

#: Facts that may differ between shards of one run (where each one found the checkpoint).
LOCAL_FACTS = ("model_path",)


@dataclass
class MergeOutcome:
    """What ``merge`` did: the merged folder, the number of shards, units copied now, the (job, batch)
    units of the plan that no shard holds yet, and what ``finish`` returned (None if not called)."""

    run_dir: Path
    shards: int
    copied: int
    missing: list[tuple[str, int]]
    finished: Any = None


@dataclass(frozen=True)
class _Shard:
    path: Path
    meta: dict[str, Any]

    @property
    def facts(self) -> dict[str, Any]:
        return _facts(self.meta["facts"])


def _read_shard(path: Path) -> _Shard:
    """The meta of a shard's store; ValueError if ``path`` is not a run folder holding an evaluation."""
    store = path / STORE_NAME
    if not store.is_file():
        raise ValueError(f"{path} is not a wdrobust run folder (no {STORE_NAME})")
    with store_errors(store):
        keys = ("config", "config_hash", "facts", "versions", "created", PARTS_META)
        meta = {k: read_meta(store, k) for k in keys}
    if meta["config_hash"] is None or meta["facts"] is None:
        raise ValueError(f"{path} holds no evaluation yet (killed before it started)")
    return _Shard(path, meta)


def _check_same_run(shards: list[_Shard]) -> None:
    first = shards[0]
    for other in shards[1:]:
        if other.meta["config_hash"] != first.meta["config_hash"]:
            hashes = f"{other.meta['config_hash'][:12]} vs {first.meta['config_hash'][:12]}"
            raise ValueError(
                f"{other.path} holds another configuration than {first.path} (config hash {hashes}): "
                "not shards of one run"
            )
        if (other.meta[PARTS_META] or {}) != (first.meta[PARTS_META] or {}):
            raise ValueError(
                f"{other.path} and {first.path} cut their certificate batches into different units "
                f"({other.meta[PARTS_META] or {}} vs {first.meta[PARTS_META] or {}}): not shards of one run"
            )
        keys = first.facts.keys() | other.facts.keys()
        differ = sorted(k for k in keys if first.facts.get(k) != other.facts.get(k))
        if differ:
            raise ValueError(
                f"{other.path} and {first.path} evaluated different models or data "
                f"({', '.join(differ)} differ): not shards of one run"
            )


def merge(
    sources: Sequence[str | Path],
    out: str | Path,
    *,
    force: bool = False,
    finish: Callable[[Path], Any] | None = None,
) -> MergeOutcome:
    """Union the units of the run folders ``sources`` into ``out``, then ``finish(out)`` if given and
    the clean pass is complete (without it nothing can be aggregated yet).

    Refused (ValueError, nothing written): no sources, a source listed twice or equal to ``out``, a source
    that is not a run folder, shards of different runs, an ``out`` that holds another run (unless
    ``force``: start it over, only wdrobust's files are removed) or is itself a shard, or a folder of
    other files. ``out`` is locked while it is written; each unit is copied in one transaction.
    """
    out = Path(out)
    paths = [Path(s) for s in sources]
    if not paths:
        raise ValueError("merge needs at least one run folder")
    resolved = [p.resolve() for p in paths]
    if len(set(resolved)) != len(resolved):
        raise ValueError("a run folder is listed twice")
    if out.resolve() in resolved:
        raise ValueError(f"--out {out} is one of the folders to merge; choose another --out")
    shards = [_read_shard(p) for p in paths]
    _check_same_run(shards)
    stored = from_json(EvalConfig, shards[0].meta["config"], f"{shards[0].path}: the stored configuration")
    cfg = dataclasses.replace(stored, out=str(out), shard=None)
    target = out / STORE_NAME
    resume = check_run_folder(cfg, force)
    if resume and _facts(read_meta(target, "facts")) != shards[0].facts:
        raise ValueError(
            f"run folder {out} holds another model or data than the shards: {folder.CHOOSE_ANOTHER}"
        )
    check_folder_writable(out)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        with folder.locked(out):
            if force:
                folder.clear(out)
            folder.remove_stale(out)
            with store_errors(target), Store(target) as store:
                if store.get_meta("config_hash") is None:
                    store.set_meta(_merged_meta(cfg, shards))
                copied = sum(store.import_units(shard.path / STORE_NAME) for shard in shards)
                parts = store.get_meta(PARTS_META) or {}
                layout = Layout(shards[0].meta["facts"]["n"], cfg.batch_size, parts)
                missing = _missing(cfg, layout, store.finished())
            finished = None
            if finish is not None and not any(job == "clean" for job, _ in missing):
                with store_errors(target):
                    finished = finish(out)
    except BaseException:
        if created:
            folder.remove_created(out)
        raise
    return MergeOutcome(out, len(shards), copied, missing, finished)


def _facts(facts: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (facts or {}).items() if k not in LOCAL_FACTS}


def _merged_meta(cfg: EvalConfig, shards: list[_Shard]) -> dict[str, Any]:
    """The meta of the merged store: the shards' configuration (as one unsharded run), facts, versions."""
    first = shards[0].meta
    created = [s.meta["created"] for s in shards if s.meta["created"] is not None]
    return {
        "config": to_json(cfg, strict=False),
        "canonical": config_mod.canonical(cfg),
        "config_hash": first["config_hash"],
        "facts": first["facts"],
        "versions": first["versions"] or {},
        "created": min(created, default=time.time()),
        "merged_from": [str(s.path) for s in shards],
    } | ({PARTS_META: first[PARTS_META]} if first[PARTS_META] else {})


def _missing(cfg: EvalConfig, layout: Layout, have: set[tuple[str, int]]) -> list[tuple[str, int]]:
    """The units of the plan that are not in ``have``, in plan order."""
    return [(job.key, u) for job, u in units(plan(cfg), layout) if (job.key, u) not in have]
