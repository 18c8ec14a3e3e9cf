"""Attacks (lower bounds): one module per attack, one result type (``AttackResult``).

attack = ATTACKS["wda"](model, threat, seed=0, batch_size=256, population=None, **options)
result = attack.run(x, y)

population: the size N of the whole evaluated set when x is one part of it (default: the samples given to
``run``); the attack's ``Budget`` (threat over N samples) sets how far one sample may move.

Writing an attack (docs/extending.md#writing-an-attack): subclass ``Attack`` with the toolkit modules
``batch`` (the counted, recorded model calls), ``objectives``, ``steps``, ``ascent``, and behind them
``passes``, ``recorder`` and ``stacked_losses``.
"""

from wdrobust.attacks.a3 import A3, A3WDA
from wdrobust.attacks.apgd import APGD
from wdrobust.attacks.autoattack import AutoAttackReference
from wdrobust.attacks.base import Attack, AttackResult
from wdrobust.attacks.budget import Budget
from wdrobust.attacks.pgd import PGD
from wdrobust.attacks.w_pgd import WPGD
from wdrobust.attacks.wda import WDA
from wdrobust.attacks.wda_plus import WDAPlus

ATTACKS: dict[str, type[Attack]] = {
    cls.name: cls for cls in (PGD, APGD, WDA, WDAPlus, A3, A3WDA, WPGD, AutoAttackReference)
}

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
]
