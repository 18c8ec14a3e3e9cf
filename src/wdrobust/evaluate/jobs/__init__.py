"""Jobs of an evaluation as method objects: ``CleanJob``, ``AttackJob``, ``CertificateJob`` (one module
each), each with its store ``key``, ``spec()``, ``run(UnitTask) -> (arrays, info)`` for one batch, and
(attacks, certificates) ``build`` (the method with the configured options), ``to_arrays(result)`` and
``from_arrays(spec, batches, units) -> record``; the plan (jobs x batches = units) in ``jobs.plan``."""

from wdrobust.evaluate.jobs.attack import AttackJob
from wdrobust.evaluate.jobs.base import Job, UnitTask
from wdrobust.evaluate.jobs.certificate import VISITED, CertificateJob, certificate_radii
from wdrobust.evaluate.jobs.clean import CleanJob
from wdrobust.evaluate.jobs.plan import attack_jobs, batches, plan, unit_seed, units

__all__ = [
    "VISITED",
    "AttackJob",
    "CertificateJob",
    "CleanJob",
    "Job",
    "UnitTask",
    "attack_jobs",
    "batches",
    "certificate_radii",
    "plan",
    "unit_seed",
    "units",
]
