"""Attacks (lower bounds): one module per attack, one result type (``AttackResult``).

attack = build_attack("wda", model, threat, {"steps": 10}, seed=0, batch_size=256, population=None)
result = attack.run(x, y)

(the same as ``ATTACKS["wda"](model, threat, steps=10, seed=0, ...)``; every class declares its options,
``Attack.option_table()``).

population: the size N of the whole evaluated set when x is one part of it (default: the samples given to
``run``); the attack's ``Budget`` (threat over N samples) sets how far one sample may move.

Writing an attack (docs/extending.md#writing-an-attack): subclass ``Attack`` with the toolkit modules
``batch`` (the counted, recorded model calls), ``objectives``, ``steps``, ``ascent``, and behind them
``passes``, ``recorder`` and ``stacked_losses``.
"""

from collections.abc import Mapping
from typing import Any

from torch import nn

from wdrobust._options import resolve
from wdrobust.attacks.a3 import A3, A3WDA
from wdrobust.attacks.apgd import APGD
from wdrobust.attacks.autoattack import AutoAttackReference
from wdrobust.attacks.base import Attack, AttackResult
from wdrobust.attacks.budget import Budget
from wdrobust.attacks.pgd import PGD
from wdrobust.attacks.w_pgd import WPGD
from wdrobust.attacks.wda import WDA
from wdrobust.attacks.wda_plus import WDAPlus
from wdrobust.threat import ThreatModel

ATTACKS: dict[str, type[Attack]] = {
    cls.name: cls for cls in (PGD, APGD, WDA, WDAPlus, A3, A3WDA, WPGD, AutoAttackReference)
}


def attack_class(name: str) -> type[Attack]:
    """The registered attack ``name``; ValueError naming the choices otherwise."""
    if name not in ATTACKS:
        raise ValueError(f"unknown attack {name!r}: expected one of {', '.join(ATTACKS)}")
    return ATTACKS[name]


def build_attack(
    name: str, model: nn.Module, threat: ThreatModel, options: Mapping[str, Any] | None = None, **context: Any
) -> Attack:
    """The registered attack ``name`` on model under threat with its declared ``options`` (names checked
    against ``option_table``, values by ``Attack.__init__``) and the run's ``context`` (losses, seed,
    batch_size, device, keep_points, progress, population): the one constructor of the CLI, the pipeline
    and the API."""
    cls = attack_class(name)
    given = dict(options or {})
    resolve(cls.option_table(), given, f"attack {name!r}")  # a context name is not an option
    return cls(model, threat, **context, **given)


__all__ = [
    "A3",
    "A3WDA",
    "APGD",
    "ATTACKS",
    "PGD",
    "WDA",
    "WPGD",
    "Attack",
    "AttackResult",
    "AutoAttackReference",
    "Budget",
    "WDAPlus",
    "attack_class",
    "build_attack",
]
