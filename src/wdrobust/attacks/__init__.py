"""Attacks (lower bounds): one module per attack, one result type (``AttackResult``).

attack = ATTACKS["wda"](model, threat, seed=0, batch_size=256, **options)
result = attack.run(x, y)
"""

from wdrobust.attacks.a3 import A3, A3WDA
from wdrobust.attacks.apgd import APGD
from wdrobust.attacks.autoattack import AutoAttackReference
from wdrobust.attacks.base import Attack, AttackResult
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
    "WDAPlus",
]
