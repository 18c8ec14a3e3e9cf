"""Certificates: sound upper bounds (and labelled estimates) of the WDRO risk from growth majorants.

``CERTIFICATES`` maps a registry name to its class; every class follows ``certify.base.Certificate``:
``Cls(model, threat, *, losses, radii, device, batch_size, progress).run(x, y) -> CertificateResult``.
"""

from wdrobust.certify.base import Certificate, CertificateResult, ShellBound, default_radii
from wdrobust.certify.empirical import Empirical
from wdrobust.certify.first_order import FirstOrder
from wdrobust.certify.global_lipschitz import GlobalLipschitz

CERTIFICATES: dict[str, type[Certificate]] = {
    cls.name: cls for cls in (GlobalLipschitz, FirstOrder, Empirical)
}

__all__ = [
    "CERTIFICATES",
    "Certificate",
    "CertificateResult",
    "Empirical",
    "FirstOrder",
    "GlobalLipschitz",
    "ShellBound",
    "default_radii",
]
