"""Certificates: sound upper bounds (and labelled estimates) of the WDRO risk from growth majorants.

``CERTIFICATES`` maps a registry name to its class; every class follows ``certify.base.Certificate``:
``Cls(model, norm, *, losses, radii, device, batch_size, progress).run(x, y) -> CertificateResult``;
``Cls.options_for(norm, eps, d)`` gives the options (shell radii, ...) a threat radius eps suggests;
every class declares its options (``Certificate.option_table()``), its norms and whether it reads the
attacks' points (``needs_points``), and ``build_certificate`` constructs any of them.
Sound: global, local, cell, crown, radius, milp, exact, bab. Estimates (sound=False): first-order, empirical.
"""

from collections.abc import Mapping
from typing import Any

from torch import nn

from wdrobust._options import resolve
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


def certificate_class(name: str) -> type[Certificate]:
    """The registered certificate ``name``; ValueError naming the choices otherwise."""
    if name not in CERTIFICATES:
        raise ValueError(f"unknown certificate {name!r}: expected one of {', '.join(CERTIFICATES)}")
    return CERTIFICATES[name]


def build_certificate(
    name: str,
    model: nn.Module,
    norm: str,
    options: Mapping[str, Any] | None = None,
    *,
    around: tuple[float, int] | None = None,
    **context: Any,
) -> Certificate:
    """The registered certificate ``name`` for the norm with its declared ``options`` (names checked
    against ``option_table``, values by ``Certificate.__init__``) over, when ``around`` = (eps, d) is
    given, the options that threat radius suggests for inputs of dimension d (``options_for``), and the
    run's ``context`` (losses, device, batch_size, progress): the one constructor of the CLI, the
    pipeline and the API."""
    cls = certificate_class(name)
    given = dict(options or {})
    resolve(cls.option_table(), given, f"certificate {name!r}")  # a context name is not an option
    suggested = {} if around is None else cls.options_for(norm, *around)
    return cls(model, norm, **context, **{**suggested, **given})


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
    "build_certificate",
    "certificate_class",
    "default_radii",
]
