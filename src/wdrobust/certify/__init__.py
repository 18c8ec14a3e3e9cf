"""Certificates: sound upper bounds (and labelled estimates) of the WDRO risk from growth majorants.

``CERTIFICATES`` maps a registry name to its class; every class follows ``certify.base.Certificate``:
``Cls(model, norm, *, losses, radii, device, batch_size, progress).run(x, y) -> CertificateResult``;
``Cls.options_for(norm, eps, d)`` gives the options (shell radii, ...) a threat radius eps suggests.
Sound: global, local, cell, crown, radius, milp, exact, bab. Estimates (sound=False): first-order, empirical.
"""

from wdrobust.certify.bab.certificate import BabCertificate
from wdrobust.certify.base import Certificate, CertificateResult, ShellBound, default_radii
from wdrobust.certify.cell import CellCertificate
from wdrobust.certify.crown import CrownCertificate
from wdrobust.certify.empirical import Empirical
from wdrobust.certify.exact import ExactCertificate
from wdrobust.certify.first_order import FirstOrder
from wdrobust.certify.global_lipschitz import GlobalLipschitz
from wdrobust.certify.local import LocalCertificate
from wdrobust.certify.milp import MILPCertificate
from wdrobust.certify.radius import RadiusCertificate

CERTIFICATES: dict[str, type[Certificate]] = {
    cls.name: cls
    for cls in (
        GlobalLipschitz,
        LocalCertificate,
        CellCertificate,
        CrownCertificate,
        RadiusCertificate,
        MILPCertificate,
        ExactCertificate,
        BabCertificate,
        FirstOrder,
        Empirical,
    )
}

__all__ = [
    "CERTIFICATES",
    "CellCertificate",
    "Certificate",
    "CertificateResult",
    "CrownCertificate",
    "Empirical",
    "FirstOrder",
    "GlobalLipschitz",
    "LocalCertificate",
    "MILPCertificate",
    "RadiusCertificate",
    "ShellBound",
    "default_radii",
]
