"""The certificate contract (``certify.contract.check_certificate``) over every entry of ``CERTIFICATES``,
and the proof that it catches broken certificates registered beside them."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import pytest
import torch

from wdrobust._options import Option, one_of
from wdrobust.certify import CERTIFICATES, Certificate, LocalCertificate, RadiusCertificate, certificate_class
from wdrobust.certify.base import ShellBound, box_diameter
from wdrobust.certify.contract import check_certificate

#: Options that keep the solver-based certificates to a few seconds on the contract's tiny network. bab is
#: limited by domains, not seconds (no time limit binds), so that its determinism check holds on a slow
#: or busy machine too.
FAST: dict[str, dict[str, Any]] = {
    "milp": {"time_limit": 5.0},
    "exact": {"time_limit": 5.0},
    "bab": {"budget": math.inf, "time_limit": math.inf, "tol": 0.05, "bab": {"max_bounded": 200}},
}
DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")),
]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", list(CERTIFICATES))
def test_registered_certificate_meets_the_contract(name: str, device: str) -> None:
    check_certificate(CERTIFICATES[name], FAST.get(name), device=device)


class Halved(LocalCertificate):
    """Broken: labelled sound, but its slopes are half the local certificate's."""

    name = "halved"

    def _bound_batch(self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, **batch: Any) -> ShellBound:
        bound = super()._bound_batch(x, y, z)
        bound.slopes = {k: v / 2 for k, v in bound.slopes.items()}
        return bound


class Boastful(RadiusCertificate):
    """Broken: claims the whole box (radius diam X) for every sample it certifies at all."""

    name = "boastful"

    def _bound_batch(self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, **batch: Any) -> ShellBound:
        bound = super()._bound_batch(x, y, z)
        r = bound.certified_radius
        bound.certified_radius = torch.where(r > 0, box_diameter(self.norm, x[0].numel()), r)
        return bound


class BadDefault(LocalCertificate):
    """Broken: the default of an option fails its own check."""

    name = "bad-default"
    declared: ClassVar = (Option("boxes", str, "fast", one_of("auto", "interval"), "boxes"),)


@pytest.mark.parametrize(
    ("broken", "clause"),
    [(Halved, "majorant unsound"), (Boastful, "certified radius unsound"), (BadDefault, "default of option")],
)
def test_the_contract_fails_for_a_broken_registered_certificate(
    broken: type[Certificate], clause: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("wdrobust.certify.CERTIFICATES", {**CERTIFICATES, broken.name: broken})
    with pytest.raises(AssertionError, match=f"certificate {broken.name!r}: .*{clause}"):
        check_certificate(certificate_class(broken.name))
