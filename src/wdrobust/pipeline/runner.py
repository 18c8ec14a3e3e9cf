"""Running an evaluation: every (job, batch) unit not yet in the store is computed and stored.

Order of events (so bad input never leaves anything behind):
1. validate the configuration; check an existing run folder holds the same configuration (else refuse,
   or start over with ``force``) and refuse a non-empty folder that is not a run folder; check that the
   folder accepts files or can be created (the message names the real reason: not writable, not a folder);
2. load and check model and data; run every method not yet used in the run folder once on the first
   sample (options and model support, e.g. ``cell`` on a GELU network, fail here), with progress shown;
   a certificate's result for that sample is kept and joins its first unit (``Checked``), so an
   expensive certificate does not pay for it twice; a certificate whose batch may hold more than
   ``UNIT_SECONDS`` of work at that pace also runs on samples 1 and 2 (kept as well when it is cut), which
   separates its fixed cost from its cost per sample (``parts_for``);
3. create the run folder and lock it (another process working on it is refused); check the folder again,
   now that no other run can change it; with ``force`` remove the previous run's files (only wdrobust's);
   remove temporary files a killed writer left;
4. create the store, record config, hash and data facts, open a session; compute the missing units in
   plan order, one transaction per finished unit, with progress shown (``wdrobust._progress``: a bar on
   a terminal, a timestamped line every few seconds elsewhere); log to ``run.log`` (the checks of step
   2, every unit, an interruption by Ctrl-C too); a certificate whose batch the check estimates at more
   than ``jobs.plan.UNIT_SECONDS`` of work is cut into pieces (``Layout``, recorded in the store's meta
   ``unit_parts``, so that later sessions, aggregation and merges cut it the same way);
5. call ``finish(run_dir)`` (the CLI renders the report there), still holding the lock.
A folder created in step 3 is removed again if the run fails before any unit was stored. sqlite3
failures (a full disk, a read-only folder) are raised as ``StoreError`` naming the store.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import platform
import sys
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console

from wdrobust import __version__
from wdrobust._atomic import check_folder_writable
from wdrobust._device import resolve_device
from wdrobust._progress import progress
from wdrobust._serde import to_json
from wdrobust.pipeline import config as config_mod
from wdrobust.pipeline import folder
from wdrobust.pipeline.config import EvalConfig, parse_shard
from wdrobust.pipeline.folder import LOG_NAME
from wdrobust.pipeline.inputs import Inputs, evaluation_inputs
from wdrobust.pipeline.jobs import (
    AttackJob,
    CertificateJob,
    CleanJob,
    Job,
    UnitTask,
    plan,
    unit_seed,
    units,
)
from wdrobust.pipeline.jobs.base import UnitOutput
from wdrobust.pipeline.jobs.certificate import majorant_arrays, majorants_of
from wdrobust.pipeline.jobs.plan import PARTS_META, UNIT_SECONDS, Layout, may_exceed, parts_for
from wdrobust.pipeline.store import STORE_NAME, Store, read_meta, store_errors, stored_jobs
from wdrobust.primal.curves import Majorant, pad_columns

log = logging.getLogger("wdrobust.pipeline")


@dataclass
class Checked:
    """What the check of step 2 (module docstring) found: the seconds each method took on the first
    sample, by "kind 'method'"; the outputs of the certificate jobs on the first one or three samples
    with their seconds, by job key (kept for the job's first units, ``join_first``); and the pieces each
    certificate job's batches are cut into (``parts_for``; only those cut, by job key)."""

    seconds: dict[str, float]
    first: dict[str, tuple[UnitOutput, float]]
    parts: dict[str, int] = field(default_factory=dict)


@dataclass
class RunOutcome:
    """What a call to ``run`` did: the run folder, units computed now and units found finished, the
    seconds taken (``finish`` left out) and what ``finish`` returned."""

    run_dir: Path
    computed: int
    resumed: int
    seconds: float
    finished: Any = None


def check_run_folder(cfg: EvalConfig, force: bool) -> bool:
    """Whether the run folder already holds a store of this configuration (a resume). Writes nothing.

    A store with a different configuration hash raises ValueError unless ``force``; a non-empty folder
    that is not a run folder (no store, and files wdrobust did not write) always raises, force or not.
    """
    out = Path(cfg.out)
    store_path = out / STORE_NAME
    if store_path.exists():
        stored = read_meta(store_path, "config_hash")
        current = config_mod.config_hash(cfg)
        if stored is None or force:  # None: killed before the config was recorded
            return False
        if stored != current:
            raise ValueError(f"run folder {out} holds a different configuration: {folder.CHOOSE_ANOTHER}")
        shard = read_meta(store_path, "shard")
        if shard != cfg.shard:
            held = "the whole run" if shard is None else f"shard {shard}"
            asked = "the whole run" if cfg.shard is None else f"shard {cfg.shard}"
            raise ValueError(
                f"run folder {out} holds {held} of this configuration, not {asked}; choose another --out"
            )
        return True
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} exists and is not a folder")
    if out.exists() and folder.foreign_entries(out):
        raise ValueError(
            f"{out} is not a wdrobust run folder (no {STORE_NAME}) and holds other files: choose another "
            "--out (--force never deletes files wdrobust did not write)"
        )
    return False


def check_same_inputs(cfg: EvalConfig, inputs: Inputs) -> None:
    """A resumed run must see the same model weights and samples as the stored units (SHA-256 of the
    checkpoint file and of the evaluated samples); otherwise ValueError."""
    stored = read_meta(Path(cfg.out) / STORE_NAME, "facts") or {}
    for key, what in (("model_sha256", "model checkpoint"), ("data_sha256", "evaluated data")):
        if key in stored and stored[key] != inputs.facts[key]:
            raise ValueError(
                f"the {what} changed since run folder {cfg.out} was started: {folder.CHOOSE_ANOTHER}"
            )


def run(
    cfg: EvalConfig,
    *,
    force: bool = False,
    console: Console | None = None,
    finish: Callable[[Path], Any] | None = None,
    inputs: Inputs | None = None,
) -> RunOutcome:
    """Compute every missing unit of ``cfg`` into ``cfg.out``, then ``finish(run_dir)``; see the module
    docstring. ``inputs``: the model and samples (with their facts) to evaluate instead of loading
    ``cfg.model`` and ``cfg.data`` (the Python API, ``wdrobust.api.evaluate``)."""
    start = time.perf_counter()
    cfg = config_mod.validate(cfg)
    out = Path(cfg.out)
    check_run_folder(cfg, force)
    check_folder_writable(out)
    device = resolve_device(cfg.device)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    inputs = evaluation_inputs(cfg, device) if inputs is None else inputs
    checked = check_methods(cfg, inputs, device, () if force else stored_jobs(out / STORE_NAME), console)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        with folder.locked(out):
            try:
                resume = check_run_folder(cfg, force)
                if resume:
                    check_same_inputs(cfg, inputs)
                if force:
                    folder.clear(out)
                folder.remove_stale(out)
                computed, resumed = _session(cfg, inputs, device, console, resume, checked)
                seconds = time.perf_counter() - start
                with store_errors(out / STORE_NAME):  # finish reads the store
                    finished = None if finish is None else finish(out)
            except BaseException:
                if created and not _has_units(out):
                    folder.remove_created(out)  # still holding the lock: nobody else's files
                raise
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                out.rmdir()  # left empty when not even the lock file could be created
        raise
    return RunOutcome(out, computed, resumed, seconds, finished)


def _has_units(out: Path) -> bool:
    """Whether the run folder's store holds a finished unit (True when it cannot be read: keep it)."""
    try:
        return bool(stored_jobs(out / STORE_NAME))
    except (OSError, ValueError):
        return True


def _session(
    cfg: EvalConfig,
    inputs: Inputs,
    device: torch.device,
    console: Console | None,
    resume: bool,
    checked: Checked,
) -> tuple[int, int]:
    """One session on the locked run folder: open the store and log, log the checks, compute the missing
    units; returns (units computed, units found finished). Ctrl-C is logged before it propagates."""
    out = Path(cfg.out)
    start = time.perf_counter()
    handler = _file_log(out / LOG_NAME)
    try:
        with store_errors(out / STORE_NAME), Store(out / STORE_NAME) as store:
            try:
                layout, todo, done = _open_run(store, cfg, inputs, resume, checked.parts)
                for name, seconds in checked.seconds.items():
                    log.info("checked %s on the first sample (%.2f s)", name, seconds)
                for key, k in layout.parts.items():
                    log.info("%s: every batch cut into %d units (over %.0f s each)", key, k, UNIT_SECONDS)
                _compute(store, cfg, inputs, layout, todo, device, console, checked.first)
            except KeyboardInterrupt:
                log.warning(
                    "session %s interrupted (Ctrl-C) with %d units stored; re-run the same command to resume",
                    store.session,
                    len(store.finished()),
                )
                raise
        seconds = time.perf_counter() - start
        log.info("session finished: %d units computed, %d resumed, %.1f s", len(todo), len(done), seconds)
    finally:
        _close_log(handler)
    return len(todo), len(done)


def _open_run(
    store: Store, cfg: EvalConfig, inputs: Inputs, resume: bool, parts: dict[str, int]
) -> tuple[Layout, list[tuple[Job, int]], set[tuple[str, int]]]:
    """Record meta and jobs, open a session; return the layout of the units, the units to compute and
    those already finished. The pieces of jobs cut in an earlier session stay as recorded (``unit_parts``);
    those of jobs with no unit stored yet are added (``parts``, measured by this session's check)."""
    if store.get_meta("config_hash") is None:
        store.set_meta(
            {
                "config": to_json(cfg, strict=False),
                "canonical": config_mod.canonical(cfg),
                "config_hash": config_mod.config_hash(cfg),
                "facts": inputs.facts,
                "versions": versions(),
                "created": time.time(),
            }
        )
        if cfg.shard is not None:
            store.set_meta({"shard": cfg.shard})
    jobs = plan(cfg)
    store.add_jobs({j.key: j.spec() for j in jobs})
    session = store.begin_session()
    done = store.finished()
    started = {job for job, _ in done}
    recorded = store.get_meta(PARTS_META) or {}
    cut = recorded | {k: v for k, v in parts.items() if k not in recorded and k not in started}
    if cut != recorded:
        store.set_meta({PARTS_META: cut})
    layout = Layout(inputs.x.shape[0], cfg.batch_size, cut)
    shard = None if cfg.shard is None else parse_shard(cfg.shard)
    todo = [(j, u) for j, u in units(jobs, layout, shard) if (j.key, u) not in done]
    log.info(
        "session %d (%s%s): %d units to compute, %d already finished%s",
        session,
        "resume" if resume else "new run",
        "" if shard is None else f", shard {shard[0]}/{shard[1]}",
        len(todo),
        len(done),
        "" if not done else " (not recomputed)",
    )
    return layout, todo, done


def _compute(
    store: Store,
    cfg: EvalConfig,
    inputs: Inputs,
    layout: Layout,
    todo: list[tuple[Job, int]],
    device: torch.device,
    console: Console | None,
    first: dict[str, tuple[UnitOutput, float]],
) -> None:
    """Compute and store the units of ``todo`` in order, with progress unless quiet (a unit's label is
    shown while it runs); a unit of a job in ``first`` that holds checked samples takes their rows and
    computes only the others (``reuse``)."""
    total = len(todo)
    # each unit's place among its job's units, for the label "key [place/count]"
    place = {key: {u: i for i, u in enumerate(layout.units(key))} for key in {job.key for job, _ in todo}}
    with progress("evaluating", quiet=cfg.quiet or total == 0, console=console, unit="units") as update:
        for i, (job, u) in enumerate(todo):
            update(i, total, f"{job.key} [{place[job.key][u] + 1}/{len(place[job.key])}]")
            sl, b = layout.samples(job.key, u), layout.batch(job.key, u)
            seed = unit_seed(cfg.seed, job.key, u)
            torch.manual_seed(seed)
            started = time.time()
            tic = time.perf_counter()
            visited = visited_points(store, cfg, b, job.method) if job.reads_visited else None  # never cut
            task = UnitTask(cfg, inputs, sl, seed, device, visited)
            compute = functools.partial(_run_on, job, task)
            output, spent = reuse(first[job.key], sl, compute) if job.key in first else (None, 0.0)
            if output is None:  # nothing checked in this unit, or not joinable: the whole unit
                output = job.run(task)
            arrays, info = output
            seconds = time.perf_counter() - tic + spent
            store.put_unit(
                job.key,
                u,
                arrays,
                started=started,
                seconds=seconds,
                forward_passes=info.pop("forward_passes", 0),
                backward_passes=info.pop("backward_passes", 0),
                info=info,
            )
            reused = "; samples from the check reused" if spent else ""
            piece = "" if layout.pieces(job.key) == 1 else f" samples {sl.start}-{sl.stop - 1}"
            log.info("unit %s batch %d%s stored (%.2f s%s)", job.key, b, piece, seconds, reused)
            update(i + 1, total)


def reuse(
    checked: tuple[UnitOutput, float], sl: slice, compute: Callable[[slice], UnitOutput]
) -> tuple[UnitOutput | None, float]:
    """The output of the unit of samples ``sl`` from a checked output of samples [0, c) (``checked``: the
    output and its seconds): its rows of ``sl`` (``take_rows``), joined with ``compute`` of the samples
    of ``sl`` from c on (``join_first``), and the checked seconds' share of those rows. (None, 0.0) when
    ``sl`` holds no checked sample or the outputs do not have the row layout."""
    output, spent = checked
    c = n_rows(output)
    stop = min(sl.stop, c)
    if c == 0 or sl.start >= stop:
        return None, 0.0
    head = take_rows(output, sl.start, stop)
    if head is not None and sl.stop > c:
        head = join_first(head, compute(slice(c, sl.stop)))
    return (None, 0.0) if head is None else (head, spent * (stop - sl.start) / c)


def n_rows(output: UnitOutput) -> int:
    """The number of samples of a certificate output (rows of its arrays; 0 when it has none)."""
    return min((len(a) for a in output[0].values() if a.ndim > 0), default=0)


def take_rows(output: UnitOutput, lo: int, hi: int) -> UnitOutput | None:
    """The rows lo..hi-1 of a certificate output whose every array has one row per sample, with the
    method's seconds apportioned; None for another layout."""
    arrays, info = output
    c = n_rows(output)
    if any(a.ndim == 0 or len(a) != c for a in arrays.values()):
        return None
    share = (hi - lo) / c
    seconds = info.get("seconds_method", 0.0) * share
    return {k: a[lo:hi] for k, a in arrays.items()}, {**info, "seconds_method": seconds}


def _run_on(job: Job, task: UnitTask, samples: slice) -> UnitOutput:
    """``job`` run on other samples of the same unit (``task`` with ``samples`` instead of its slice; the
    visited points, which are the unit's, are not read by a job whose checked output is reused)."""
    return job.run(dataclasses.replace(task, sl=samples, visited=None))


def visited_points(store: Store, cfg: EvalConfig, batch: int, reader: str) -> torch.Tensor | None:
    """The candidate points of every attack job for one batch, side by side (N, M, *S) (columns of
    different jobs padded with NaN, which a certificate that ``needs_points`` ignores); None without
    attacks. The attack units come first in the plan, so they are in the store; a missing one raises
    ValueError naming the ``reader``."""
    parts = []
    for job in plan(cfg):
        if not isinstance(job, AttackJob):
            continue
        points = store.arrays(job.key, batch).get("points")
        if points is None:
            raise ValueError(f"{reader} needs the points of {job.key} batch {batch}, which are not stored")
        parts.append(points)
    if not parts:
        return None
    width = max(p.shape[1] for p in parts)
    return torch.from_numpy(np.concatenate([pad_columns(p, width, np.nan) for p in parts], 1))


def check_methods(
    cfg: EvalConfig,
    inputs: Inputs,
    device: torch.device,
    used: Collection[str] = (),
    console: Console | None = None,
) -> Checked:
    """Run every method once on the first sample, so that bad options and models a method does not
    support fail before the run folder exists; shows which method runs (progress, unless quiet). Methods
    with a job in ``used`` (jobs with units in the store) already ran on this model and are skipped.
    Errors are ValueErrors naming the method. Returns the seconds of each check and the certificate
    outputs kept for their first unit (a certificate bounds each sample on its own; one that reads the
    attacks' points is not kept: those come from the attack units), and the pieces of the certificates
    whose batches are too much work for one unit (``_cost``)."""
    jobs = plan(cfg)
    ran = {(j.kind, j.method) for j in jobs if j.key in used}
    todo: dict[tuple[str, str], Job] = {}
    for job in jobs:
        if not isinstance(job, CleanJob) and (job.kind, job.method) not in ran:
            todo.setdefault((job.kind, job.method), job)
    checked = Checked({}, {})
    with progress("checking", quiet=cfg.quiet or not todo, console=console, unit="methods") as update:
        for i, job in enumerate(todo.values()):
            name = f"{job.kind} {job.method!r}"
            update(i, len(todo), f"checking {name} on the first sample")
            tic = time.perf_counter()
            seed = unit_seed(cfg.seed, job.key, 0)  # the seed of the job's first unit, which may keep it
            torch.manual_seed(seed)
            try:
                output = job.run(UnitTask(cfg, inputs, slice(0, 1), seed, device))
            except ValueError as exc:
                raise ValueError(str(exc) if str(exc).startswith(name) else f"{name}: {exc}") from None
            checked.seconds[name] = time.perf_counter() - tic
            if isinstance(job, CertificateJob) and not job.reads_visited:
                checked.first[job.key] = (output, checked.seconds[name])
                _cost(job, checked, UnitTask(cfg, inputs, slice(1, 3), seed, device), cfg.shard is None)
            update(i + 1, len(todo))
    return checked


def _cost(job: CertificateJob, checked: Checked, more: UnitTask, may_cut: bool) -> None:
    """When a batch of ``job`` may hold more than ``UNIT_SECONDS`` at the pace of its check (and the run
    may be cut: not a shard, whose pieces must agree with the other shards'), run it on samples 1 and 2
    too (``more``) and record the pieces of its batches (``parts_for``) in ``checked.parts``; the outputs
    of samples 1 and 2 are kept with the first (``join_first``) only when the batches are cut (an uncut
    job recomputes them in its first batch, so that its results are those of a run without the check)."""
    output, one = checked.first[job.key]
    batch = min(more.cfg.batch_size, more.inputs.x.shape[0])
    if not may_cut or batch < 3 or not may_exceed(one, batch, UNIT_SECONDS):
        return
    tic = time.perf_counter()
    rest = job.run(more)
    two = time.perf_counter() - tic
    parts = parts_for(one, one + two, batch, UNIT_SECONDS)
    if parts == 1:  # samples 1 and 2 are computed again in their batch: results as an uncut run's
        return
    checked.parts[job.key] = parts
    joined = join_first(output, rest)
    if joined is not None:
        checked.first[job.key] = (joined, one + two)


def join_first(first: UnitOutput, rest: UnitOutput) -> UnitOutput | None:
    """One certificate unit from the output on its first sample and on its other samples: majorants
    stacked (``Majorant.stack``: the narrower one widened, the same phibar), the other arrays (one row
    per sample) concatenated, sound when both are, notes joined, the method's seconds summed; None when
    the outputs do not have that layout (then the unit is computed whole)."""
    (a, info_a), (b, info_b) = first, rest
    plain = [k for k in a if not k.startswith("major.")]
    if set(a) != set(b) or any(
        a[k].ndim == 0 or len(a[k]) != 1 or a[k].shape[1:] != b[k].shape[1:] for k in plain
    ):
        return None
    arrays = {k: np.concatenate([a[k], b[k]]) for k in plain}
    rest_majorants = majorants_of(b)
    arrays |= majorant_arrays(
        {loss: Majorant.stack([maj, rest_majorants[loss]]) for loss, maj in majorants_of(a).items()}
    )
    notes = dict.fromkeys(note for note in (info_a.get("note"), info_b.get("note")) if note)
    info = {
        **info_b,
        "sound": bool(info_a.get("sound")) and bool(info_b.get("sound")),
        "note": "; ".join(notes),
        "seconds_method": info_a.get("seconds_method", 0.0) + info_b.get("seconds_method", 0.0),
    }
    return arrays, info


class _LogFile(logging.FileHandler):
    """A FileHandler whose write failures (a full disk) stop the run with an OSError naming the log,
    instead of printing a traceback and going on."""

    def handleError(self, record: logging.LogRecord) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            raise OSError(exc.errno, exc.strerror, self.baseFilename) from None
        super().handleError(record)


def _file_log(path: Path) -> logging.Handler:
    handler = _LogFile(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return handler


def _close_log(handler: logging.Handler) -> None:
    log.removeHandler(handler)
    with contextlib.suppress(OSError):  # a write that failed (full disk) fails again when flushed here
        handler.close()


def versions() -> dict[str, str]:
    """Versions of wdrobust, python, torch and numpy (recorded in the store and results.json)."""
    return {
        "wdrobust": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
    }
