"""The attack contract (``attacks.contract.check_attack``) over every entry of ``ATTACKS``, and the proof
that it catches broken attacks registered beside them."""

from __future__ import annotations

import importlib.util
from typing import ClassVar

import pytest
import torch

from wdrobust._options import Option, at_least
from wdrobust.attacks import ATTACKS, Attack, attack_class
from wdrobust.attacks.batch import Batch
from wdrobust.attacks.contract import check_attack

#: Options that keep each run to a few hundred passes (the contract is about behaviour, not strength).
FAST = {
    "pgd": {"steps": 3},
    "apgd": {"n_iter": 5},
    "wda": {"steps": 3, "probe_steps": 1, "radii": 2, "whole_box": 2, "whole_box_steps": 3},
    "wda++": {"max_steps": 5, "bisection": 3},
    "a3": {"restarts": 2, "n_iter": 3},
    "a3-wda": {"restarts": 2, "n_iter": 3, "steps": 2, "radii": 2},
    "w-pgd": {"steps": 3},
    "autoattack": {},
}
#: Attacks whose runs the contract skips here: the optional reference AutoAttack takes ~40 s on the
#: contract's setting on a loaded 2-core machine (and refuses its 12 features under l2 and l1: no view
#: of both sides >= 5 for its Square attack).
SLOW = ("autoattack",)
DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")),
]


def test_every_registered_attack_has_fast_options() -> None:
    assert set(FAST) == set(ATTACKS)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", list(ATTACKS))
def test_registered_attack_meets_the_contract(name: str, device: str) -> None:
    if name == "autoattack" and importlib.util.find_spec("pyautoattack") is None:
        pytest.skip("the optional pyautoattack package is not installed")
    check_attack(ATTACKS[name], FAST[name], device=device, runs=name not in SLOW)


class OutsideTheBox(Attack):
    """Broken: offers x_i + 0.5, outside [0, 1]^d (a point no distribution on X may hold)."""

    name = "outside"

    def attack_batch(self, batch: Batch) -> None:
        batch.evaluate(batch.x0 + 0.5)


class Unseeded(Attack):
    """Broken: draws its start from the global generator, not the batch's seeded one."""

    name = "unseeded"

    def attack_batch(self, batch: Batch) -> None:
        batch.evaluate(batch.project(torch.rand(batch.x0.shape), batch.all, self.threat.eps))


class Uncounted(Attack):
    """Broken: a forward pass outside ``batch.evaluate`` (not counted)."""

    name = "uncounted"

    def attack_batch(self, batch: Batch) -> None:
        with torch.no_grad():
            z = batch.model(batch.x0)
        batch.offer(batch.x0, z, batch.all)


class BadDefault(Attack):
    """Broken: the default of an option fails its own check."""

    name = "bad-default"
    declared: ClassVar = (Option("steps", int, 0, at_least(1), "steps"),)

    def attack_batch(self, batch: Batch) -> None:
        batch.evaluate(batch.x0)


@pytest.mark.parametrize(
    ("broken", "clause"),
    [
        (OutsideTheBox, "box"),
        (Unseeded, "same seed"),
        (Uncounted, "counted passes"),
        (BadDefault, "default of option steps"),
    ],
)
def test_the_contract_fails_for_a_broken_registered_attack(
    broken: type[Attack], clause: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("wdrobust.attacks.ATTACKS", {**ATTACKS, broken.name: broken})
    with pytest.raises(AssertionError, match=f"attack {broken.name!r}: .*{clause}"):
        check_attack(attack_class(broken.name))
