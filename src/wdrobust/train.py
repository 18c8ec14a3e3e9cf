"""Training: standard and PGD adversarial training (the cached default model is ``wdrobust.models``).

``train`` minimises the mean cross-entropy E l_ce(f(x'), y) with Adam over shuffled mini-batches, where
x' = x (standard) or x' = PGD(x) (adversarial training, Madry et al.): the inner maximisation of the
cross-entropy over B(x, eps) ∩ [0, 1]^d by projected steepest ascent with the threat's dual-norm
maximiser, a uniform random start and step size 2.5 eps / steps. The learning rate is constant or follows
a cosine schedule over the optimiser steps, lr_t = lr (1 + cos(pi t / T)) / 2 for step t of T. ``fit``
holds out a stratified validation split of the train split (10 % by default) and reports its accuracy
after every epoch; a data file without a test split (x, y only) is never split otherwise, so its
validation part is also where the test accuracy is measured (``fit`` says so through ``notice``). Runs
are seeded (weights via ``nets.build(seed=...)``, batch order and random starts via a private generator,
the validation split by the seed) and deterministic on CPU.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from wdrobust import data, nets
from wdrobust._device import cpu_threads_for, resolve_device
from wdrobust._serde import to_json
from wdrobust.data.base import stratified_split
from wdrobust.threat import ThreatModel

ADVERSARIAL = ("pgd",)
SCHEDULES = ("cosine", "constant")
#: ``train``'s options when not given (the cached default model, ``wdrobust.models``, is trained with them).
TRAIN_DEFAULTS: dict[str, Any] = {"epochs": 50, "lr": 1e-3, "batch_size": 64, "seed": 0}
#: ``fit``'s recipe when not given: a 10 % validation split, the cosine schedule from lr 3e-3 (validation
#: accuracy of the digits MLP 97.0 / 97.8 / 98.5 % at 1e-3 / 3e-3 / 1e-2), and epochs from the size
#: of the training set (``auto_epochs``).
FIT_DEFAULTS: dict[str, Any] = {"val_fraction": 0.1, "schedule": "cosine", "lr": 3e-3}
#: ``auto_epochs``: about this many sample passes, between 1 and MAX_AUTO_EPOCHS epochs.
AUTO_SAMPLE_PASSES, MAX_AUTO_EPOCHS = 250_000, 50
#: PGD options of adversarial training when not given.
PGD_DEFAULTS: dict[str, Any] = {"eps": 0.1, "norm": "linf", "steps": 10}

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class EpochStats:
    """What one epoch did: its number (1-based) of ``epochs``, the mean training loss and the accuracy on
    the training batches (as they were seen), the validation loss and accuracy (None without validation
    data) and the learning rate of its last step."""

    epoch: int
    epochs: int
    loss: float
    accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    lr: float

    def line(self) -> str:
        """One line such as ``epoch 3/10  loss 0.4123  acc 88.21 %  val loss 0.4410  val acc 87.90 %``."""
        text = f"epoch {self.epoch}/{self.epochs}  loss {self.loss:.4f}  acc {100 * self.accuracy:.2f} %"
        if self.val_loss is not None:
            text += f"  val loss {self.val_loss:.4f}  val acc {100 * self.val_accuracy:.2f} %"
        return text + f"  lr {self.lr:.2e}"


def auto_epochs(n_train: int) -> int:
    """round(AUTO_SAMPLE_PASSES / n_train) clipped to [1, MAX_AUTO_EPOCHS]: 50 for digits (1212 samples
    after the validation split), 5 for Fashion-MNIST (54000)."""
    return max(1, min(MAX_AUTO_EPOCHS, round(AUTO_SAMPLE_PASSES / max(n_train, 1))))


@dataclass
class TrainResult:
    """The trained model (eval mode), the mean training loss of each epoch and the wall-clock seconds."""

    model: nn.Module
    epoch_losses: list[float]
    seconds: float


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """argmax_k f(x)_k per sample, (N, *S) -> (N,) int64, in batches."""
    return torch.cat([model(x[i : i + batch_size]).argmax(dim=1) for i in range(0, len(x), batch_size)])


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> float:
    """Clean accuracy (1/N) sum_i 1{argmax f(x_i) = y_i}."""
    return (predict(model, x, batch_size) == y).float().mean().item()


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    threat: ThreatModel,
    steps: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Approximate argmax of l_ce(f(x'), y) over x' in B(x, eps) ∩ [0, 1]^d, shape (N, *S) -> (N, *S).

    x'_0 = proj(x + u), u uniform in [-eps, eps]^d; x'_{k+1} = proj(x'_k + a u*(grad)), a = 2.5 eps / steps,
    u* the dual-norm maximiser (sign for linf). Returns the last iterate (detached).
    """
    eps = threat.eps
    noise = torch.rand(x.shape, generator=generator, device="cpu").to(x.device) * 2 - 1
    x_adv = threat.project(x + eps * noise, x, eps)
    step = 2.5 * eps / max(steps, 1)
    for _ in range(steps):
        x_adv.requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(F.cross_entropy(model(x_adv), y), x_adv)
        x_adv = threat.project(x_adv.detach() + step * threat.steepest_direction(grad), x, eps)
    return x_adv.detach()


def _check_options(
    epochs: int, lr: float, batch_size: int, adversarial: str | None, steps: int, schedule: str
) -> None:
    if schedule not in SCHEDULES:
        raise ValueError(
            f"unknown learning-rate schedule {schedule!r}: expected one of {', '.join(SCHEDULES)}"
        )
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if not lr > 0:
        raise ValueError(f"learning rate must be > 0, got {lr}")
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    if adversarial is not None and adversarial not in ADVERSARIAL:
        raise ValueError(
            f"unknown adversarial training {adversarial!r}: expected one of {', '.join(ADVERSARIAL)}"
        )
    if adversarial is not None and steps < 1:
        raise ValueError(f"PGD steps must be >= 1, got {steps}")


def train(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int = TRAIN_DEFAULTS["epochs"],
    lr: float = TRAIN_DEFAULTS["lr"],
    batch_size: int = TRAIN_DEFAULTS["batch_size"],
    seed: int = TRAIN_DEFAULTS["seed"],
    adversarial: str | None = None,
    eps: float | str = PGD_DEFAULTS["eps"],
    norm: str = PGD_DEFAULTS["norm"],
    steps: int = PGD_DEFAULTS["steps"],
    weight_decay: float = 0.0,
    schedule: str = "constant",
    validation: tuple[torch.Tensor, torch.Tensor] | None = None,
    device: str | torch.device | None = None,
    progress: Progress | None = None,
    epoch_end: Callable[[EpochStats], None] | None = None,
) -> TrainResult:
    """Train ``model`` in place on x (N, *S) in [0, 1], y (N,) with Adam and cross-entropy.

    adversarial: None (standard training) or "pgd" (train on PGD points of ThreatModel(norm, eps), with
    ``steps`` ascent steps, found with the model in eval mode). schedule: "constant" or "cosine" (see the
    module docstring). validation: (x_val, y_val) evaluated after every epoch. progress(done, total) is
    called after every optimiser step, epoch_end(EpochStats) after every epoch. Returns the model in eval
    mode on ``device``.
    """
    _check_options(epochs, lr, batch_size, adversarial, steps, schedule)
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"need as many labels as inputs (and at least one), got {len(x)} and {len(y)}")
    threat = ThreatModel(norm, eps) if adversarial else None
    classes = torch.unique(y)
    if classes.numel() < 2:
        raise ValueError(
            f"the training labels hold a single class ({int(classes[0])}); a classifier needs at least two"
        )
    dev = resolve_device(device)
    model.to(dev)
    x, y = x.to(dev), y.to(dev)
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    per_epoch = -(-len(x) // batch_size)
    total_steps = epochs * per_epoch
    losses: list[float] = []
    start = time.perf_counter()
    with cpu_threads_for(model, dev):
        for epoch in range(epochs):
            order = torch.randperm(len(x), generator=generator).to(dev)
            total, hits = 0.0, 0
            for b in range(per_epoch):
                step = epoch * per_epoch + b
                if schedule == "cosine":
                    for group in optimiser.param_groups:
                        group["lr"] = lr * (1 + math.cos(math.pi * step / total_steps)) / 2
                idx = order[b * batch_size : (b + 1) * batch_size]
                xb, yb = x[idx], y[idx]
                if threat is not None:
                    model.eval()
                    xb = pgd(model, xb, yb, threat, steps, generator)
                model.train()
                logits = model(xb)
                loss = F.cross_entropy(logits, yb)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                total += loss.item() * len(idx)
                hits += int((logits.argmax(1) == yb).sum())
                if progress is not None:
                    progress(step + 1, total_steps)
            losses.append(total / len(x))
            if epoch_end is not None:
                val = None if validation is None else evaluate_loss(model.eval(), *validation)
                epoch_end(
                    EpochStats(
                        epoch + 1,
                        epochs,
                        losses[-1],
                        hits / len(x),
                        None if val is None else val[0],
                        None if val is None else val[1],
                        optimiser.param_groups[0]["lr"],
                    )
                )
    return TrainResult(model.eval(), losses, time.perf_counter() - start)


@torch.no_grad()
def evaluate_loss(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024
) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of the model on x (N, *S), y (N,), in batches, eval mode."""
    dev = next(model.parameters()).device
    loss, hits = 0.0, 0
    for i in range(0, len(x), batch_size):
        z = model(x[i : i + batch_size].to(dev))
        yb = y[i : i + batch_size].to(dev)
        loss += float(F.cross_entropy(z, yb, reduction="sum"))
        hits += int((z.argmax(1) == yb).sum())
    return loss / len(x), hits / len(x)


def no_test_split_line(data_name: str, held: int, total: int) -> str:
    """What ``fit`` measures test accuracy on for data without a test split: the held validation samples
    of ``total`` (held > 0), else the training samples."""
    if held:
        return (
            f"{data_name} has no test split (x_test, y_test): {held} of its {total} samples are held out "
            "for validation and test accuracy"
        )
    return (
        f"{data_name} has no test split (x_test, y_test) and none is held out: test accuracy is on the "
        "training data"
    )


@dataclass
class FitResult:
    """A model trained on a data set's train split, its clean test accuracy, the checkpoint metadata and
    the JSON form of the feature scaling of tabular training data (None for images): both go to the
    sidecar (``nets.save(model, path, metadata, input_scaling)``)."""

    model: nn.Module
    test_accuracy: float
    seconds: float
    metadata: dict[str, Any] = field(default_factory=dict)
    input_scaling: dict[str, Any] | None = None


def fit(
    data_name: str = data.DEFAULT_DATASET,
    arch: str = "mlp",
    *,
    root: str | Path | None = None,
    arch_kwargs: dict[str, Any] | None = None,
    device: str | torch.device | None = None,
    progress: Progress | None = None,
    epoch_end: Callable[[EpochStats], None] | None = None,
    notice: Callable[[str], None] | None = None,
    **train_options: Any,
) -> FitResult:
    """Build ``arch`` for the data set (its input shape and classes), train it on the train split with
    ``train_options`` (see ``train``; seed also seeds the weights) and measure clean test accuracy.

    Options not given take FIT_DEFAULTS: val_fraction (a stratified, seeded share of the train split held
    out and evaluated after every epoch; 0 trains on all of it), schedule; epochs None (or not given) is
    ``auto_epochs`` of the training samples. A data file without a test split is not split further: the
    test accuracy is the validation part's (the training samples' with val_fraction 0), and
    ``notice(line)`` is called once, after training, to say so. A tabular file is scaled with its
    training data's min/max (``data.scaling_of``), which the result carries so that evaluations of the
    model scale their data the same way."""
    dev = resolve_device(device)
    options = FIT_DEFAULTS | train_options
    val_fraction = float(options.pop("val_fraction"))
    if not 0 <= val_fraction < 1:
        raise ValueError(f"the validation fraction must lie in [0, 1), got {val_fraction}")
    scaling = data.scaling_of(data_name)
    x_train, y_train = data.load(data_name, "train", root, dev, scaling)
    validation = None
    if val_fraction > 0:
        if len(y_train) < 2:
            raise ValueError(
                f"cannot hold out a validation part of {len(y_train)} training sample: give val_fraction 0"
            )
        kept, held = stratified_split(y_train.cpu().numpy(), val_fraction, options.get("seed", 0))
        kept_t, held_t = torch.from_numpy(kept).to(dev), torch.from_numpy(held).to(dev)
        validation = (x_train[held_t], y_train[held_t])
        x_train, y_train = x_train[kept_t], y_train[kept_t]
    split_given = data.has_test_split(data_name)
    if split_given:
        x_test, y_test = data.load(data_name, "test", root, dev, scaling)
    else:
        x_test, y_test = validation or (x_train, y_train)
    if options.get("epochs") is None:
        options["epochs"] = auto_epochs(len(x_train))
    meta = data.info(data_name)
    kwargs = {"input_shape": list(meta.input_shape), "num_classes": meta.num_classes, **(arch_kwargs or {})}
    model = nets.build(arch, seed=options.get("seed", 0), **kwargs)
    last: list[EpochStats] = []

    def on_epoch(stats: EpochStats) -> None:
        last[:] = [stats]
        if epoch_end is not None:
            epoch_end(stats)

    result = train(
        model,
        x_train,
        y_train,
        device=dev,
        progress=progress,
        validation=validation,
        epoch_end=on_epoch,
        **options,
    )
    acc = accuracy(result.model, x_test, y_test)
    if not split_given and notice is not None:
        held = 0 if validation is None else len(validation[1])
        notice(no_test_split_line(data_name, held, len(y_train) + held))
    record = {
        "data": data_name,
        "train": {**options, "val_fraction": val_fraction},
        "test_accuracy": acc,
        "val_accuracy": last[0].val_accuracy if last else None,
        "train_seconds": result.seconds,
    }
    stored = None if scaling is None else to_json(scaling)
    return FitResult(result.model, acc, result.seconds, record, stored)
