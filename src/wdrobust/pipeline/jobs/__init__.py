"""Jobs of an evaluation as method objects: ``CleanJob``, ``AttackJob``, ``CertificateJob`` (one module
each), each with its store ``key``, ``spec()``, ``run(UnitTask) -> (arrays, info)`` for one batch, and
(attacks, certificates) ``build`` (the method with the configured options), ``to_arrays(result)`` and
``from_arrays(spec, batches, units) -> record``; the plan (jobs x batches = units) in ``jobs.plan``."""

from wdrobust.pipeline.jobs.attack import AttackJob
from wdrobust.pipeline.jobs.base import Job, UnitTask
from wdrobust.pipeline.jobs.certificate import CertificateJob, certificate_radii
from wdrobust.pipeline.jobs.clean import CleanJob
from wdrobust.pipeline.jobs.plan import attack_jobs, batches, plan, unit_seed, units

__all__ = [
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
