"""Running an evaluation: every (job, batch) unit not yet in the store is computed and stored.

Order of events (so bad input never leaves a half-written run folder):
1. validate the configuration; check an existing run folder holds the same configuration (else refuse,
   or start over with ``force``);
2. load and check model and data;
3. create the run folder and the store, record config, hash and data facts, open a session;
4. compute the missing units in plan order, one transaction per finished unit; log to ``run.log``.
A folder created in step 3 is removed again if the run fails before any unit was stored.
"""

from __future__ import annotations

import contextlib
import logging
import platform
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from wdrobust import __version__
from wdrobust._device import resolve_device
from wdrobust.evaluate import config as config_mod
from wdrobust.evaluate.config import EvalConfig
from wdrobust.evaluate.inputs import Inputs, load_inputs
from wdrobust.evaluate.jobs import Job, batches, certificate_radii, plan, unit_seed
from wdrobust.evaluate.records import attack_arrays, certificate_arrays
from wdrobust.evaluate.store import STORE_NAME, Store
from wdrobust.losses import CERTIFIABLE, all_losses

LOG_NAME = "run.log"
log = logging.getLogger("wdrobust.evaluate")


@dataclass
class RunOutcome:
    """What a call to ``run`` did: the run folder, units computed now and units found finished."""

    run_dir: Path
    computed: int
    resumed: int
    seconds: float


def check_run_folder(cfg: EvalConfig, force: bool) -> bool:
    """Whether the run folder already holds a store of this configuration (a resume).

    A store with a different configuration hash raises ValueError unless ``force``; a non-empty folder
    that is not a run folder always raises.
    """
    out = Path(cfg.out)
    store_path = out / STORE_NAME
    if store_path.exists():
        try:
            with Store(store_path) as store:
                stored = store.get_meta("config_hash")
        except sqlite3.DatabaseError:
            raise ValueError(f"{store_path} is not a wdrobust store; choose another --out") from None
        current = config_mod.config_hash(cfg)
        if stored is None or stored == current or force:  # None: killed before the config was recorded
            return stored == current and not force
        raise ValueError(
            f"run folder {out} holds a different configuration; use --force to start over "
            "or choose another --out"
        )
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out} exists and is not a wdrobust run folder")
    return False


def check_same_inputs(cfg: EvalConfig, inputs: Inputs) -> None:
    """A resumed run must see the same model weights and samples as the stored units (SHA-256 of the
    checkpoint file and of the evaluated samples); otherwise ValueError (use --force)."""
    with Store(Path(cfg.out) / STORE_NAME) as store:
        stored = store.get_meta("facts") or {}
    for key, what in (("model_sha256", "model checkpoint"), ("data_sha256", "evaluated data")):
        if key in stored and stored[key] != inputs.facts[key]:
            raise ValueError(f"the {what} changed since run folder {cfg.out} was started; use --force")


def run(cfg: EvalConfig, *, force: bool = False, console: Console | None = None) -> RunOutcome:
    """Compute every missing unit of ``cfg`` into ``cfg.out``; see the module docstring."""
    start = time.perf_counter()
    cfg = config_mod.validate(cfg)
    resume = check_run_folder(cfg, force)
    device = resolve_device(cfg.device)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    inputs = load_inputs(cfg, device)
    radii = certificate_radii(cfg, inputs.facts["input_dim"])
    check_methods(cfg, inputs, radii, device)
    if resume:
        check_same_inputs(cfg, inputs)
    out = Path(cfg.out)
    if force and (out / STORE_NAME).exists():
        shutil.rmtree(out)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    handler = _file_log(out / LOG_NAME)
    store = Store(out / STORE_NAME)
    try:
        todo, done = _open_run(store, cfg, inputs, resume)
        _compute(store, cfg, inputs, todo, radii, device, console)
    except BaseException:
        empty = not store.finished()
        store.close()
        _close_log(handler)
        if created and empty:
            shutil.rmtree(out, ignore_errors=True)
        raise
    store.close()
    seconds = time.perf_counter() - start
    log.info("session finished: %d units computed, %d resumed, %.1f s", len(todo), len(done), seconds)
    _close_log(handler)
    return RunOutcome(out, len(todo), len(done), seconds)


def _open_run(
    store: Store, cfg: EvalConfig, inputs: Inputs, resume: bool
) -> tuple[list[tuple[Job, int]], set[tuple[str, int]]]:
    """Record meta and jobs, open a session; return the units to compute and those already finished."""
    if store.get_meta("config_hash") is None:
        store.set_meta(
            {
                "config": config_mod.to_dict(cfg),
                "canonical": config_mod.canonical(cfg),
                "config_hash": config_mod.config_hash(cfg),
                "facts": inputs.facts,
                "versions": versions(),
                "created": time.time(),
            }
        )
    jobs = plan(cfg)
    store.add_jobs({j.key: j.spec() for j in jobs})
    session = store.begin_session()
    done = store.finished()
    n_batches = len(batches(inputs.x.shape[0], cfg.batch_size))
    todo = [(j, b) for j in jobs for b in range(n_batches) if (j.key, b) not in done]
    log.info(
        "session %d (%s): %d units to compute, %d already finished%s",
        session,
        "resume" if resume else "new run",
        len(todo),
        len(done),
        "" if not done else " (not recomputed)",
    )
    return todo, done


def _compute(
    store: Store,
    cfg: EvalConfig,
    inputs: Inputs,
    todo: list[tuple[Job, int]],
    radii: np.ndarray,
    device: torch.device,
    console: Console | None,
) -> None:
    """Compute and store the units of ``todo`` in order, with a progress bar unless quiet."""
    slices = batches(inputs.x.shape[0], cfg.batch_size)
    with _progress(cfg.quiet, console, len(todo)) as advance:
        for job, b in todo:
            sl = slices[b]
            seed = unit_seed(cfg.seed, job.key, b)
            torch.manual_seed(seed)
            started = time.time()
            tic = time.perf_counter()
            arrays, info = compute_unit(job, cfg, inputs, sl, seed, radii, device)
            seconds = time.perf_counter() - tic
            store.put_unit(
                job.key,
                b,
                arrays,
                started=started,
                seconds=seconds,
                forward_passes=info.pop("forward_passes", 0),
                backward_passes=info.pop("backward_passes", 0),
                info=info,
            )
            log.info("unit %s batch %d stored (%.2f s)", job.key, b, seconds)
            advance(f"{job.key} [{b + 1}/{len(slices)}]")


def compute_unit(
    job: Job,
    cfg: EvalConfig,
    inputs: Inputs,
    sl: slice,
    seed: int,
    radii: np.ndarray | None,
    device: torch.device,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Run one job on the samples ``sl``; return its arrays and info (passes, sound flag, note)."""
    x, y = inputs.x[sl].to(device), inputs.y[sl].to(device)
    if job.kind == "clean":
        with torch.no_grad():
            z = inputs.model(x)
        arrays = {f"loss.{k}": v.cpu().double().numpy() for k, v in all_losses(z, y, cfg.losses).items()}
        arrays.update(
            index=np.arange(sl.start, sl.stop),
            y=y.cpu().numpy(),
            correct=(z.argmax(dim=1) == y).cpu().numpy(),
        )
        return arrays, {"forward_passes": int(x.shape[0])}
    method = make_method(job, cfg, inputs.model, seed, radii, device)
    # an attack sees one batch, but its radius schedule must know the size of the whole evaluated set
    result = method.run(x, y, population=inputs.x.shape[0]) if job.kind == "attack" else method.run(x, y)
    if job.kind == "attack":
        info: dict[str, Any] = {"seconds_method": float(result.seconds)}
        arrays = attack_arrays(result)
    else:
        info = {"sound": bool(result.sound), "note": result.note, "seconds_method": float(result.seconds)}
        arrays = certificate_arrays(result)
    info["forward_passes"] = int(getattr(result, "forward_passes", 0))
    info["backward_passes"] = int(getattr(result, "backward_passes", 0))
    return arrays, info


def make_method(
    job: Job,
    cfg: EvalConfig,
    model: torch.nn.Module,
    seed: int,
    radii: np.ndarray | None,
    device: torch.device,
) -> Any:
    """The attack or certificate of a job, built with the configured options.

    Attacks get the config's losses and the unit's seed; certificates the certifiable losses and, unless
    their options say otherwise, the shell radii of ``jobs.certificate_radii``. Options the method does
    not accept raise ValueError naming the method.
    """
    options = dict(
        (cfg.attack_options if job.kind == "attack" else cfg.certificate_options).get(job.method, {})
    )
    cls = config_mod.registry_of(job.kind)[job.method]
    common = {"device": device, "batch_size": cfg.batch_size, "progress": None}
    try:
        if job.kind == "attack":
            return cls(model, job.threat, losses=cfg.losses, seed=seed, **common, **options)
        options.setdefault("radii", radii)
        losses = tuple(loss for loss in cfg.losses if loss in CERTIFIABLE)
        return cls(model, job.threat, losses=losses, **common, **options)
    except TypeError as exc:
        raise ValueError(f"{job.kind} {job.method!r}: bad options: {exc}") from None


def check_methods(cfg: EvalConfig, inputs: Inputs, radii: np.ndarray, device: torch.device) -> None:
    """Build every job's method once (nothing runs), so bad options fail before the run folder exists."""
    for job in plan(cfg):
        if job.kind != "clean":
            make_method(job, cfg, inputs.model, cfg.seed, radii, device)


@contextlib.contextmanager
def _progress(quiet: bool, console: Console | None, total: int) -> Iterator[Callable[[str], None]]:
    """A rich progress bar with ETA over ``total`` units (a no-op when quiet); yields advance(label)."""
    if quiet or total == 0:
        yield lambda label: None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console or Console(stderr=True), transient=False) as bar:
        task = bar.add_task("evaluating", total=total)

        def advance(label: str) -> None:
            bar.update(task, advance=1, description=label)

        yield advance


def _file_log(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return handler


def _close_log(handler: logging.Handler) -> None:
    log.removeHandler(handler)
    handler.close()


def versions() -> dict[str, str]:
    """Versions of wdrobust, python, torch and numpy (recorded in the store and results.json)."""
    return {
        "wdrobust": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
    }
