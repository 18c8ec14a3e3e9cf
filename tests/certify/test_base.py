"""Certificate base: shell radii, certified radii from shells, batching, eval mode, result helpers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _certify_brute import tiny_mlp

from wdrobust.certify import (
    CertificateResult,
    CrownCertificate,
    GlobalLipschitz,
    LocalCertificate,
    MILPCertificate,
    default_radii,
)
from wdrobust.certify.base import box_diameter, certified_radius_from_shells, check_radii
from wdrobust.threat import ThreatModel


@pytest.mark.parametrize(
    ("norm", "eps", "d"), [("linf", 0.1, 64), ("l2", 0.5, 64), ("l1", 0.0, 16), ("linf", 2.0, 4)]
)
def test_default_radii_end_at_the_diameter(norm: str, eps: float, d: int) -> None:
    diam = ThreatModel(norm, eps).diameter(d)
    assert box_diameter(norm, d) == diam
    r = default_radii(norm, eps, d)
    assert r[-1] == diam
    assert (np.diff(r) > 0).all() and (r > 0).all() and len(r) <= 8
    if 0 < eps < diam:
        assert np.isclose(r, eps).any()
    assert default_radii(norm, eps, d, shells=1).tolist() == [diam]


def test_check_radii() -> None:
    assert check_radii([0.1, 0.5, 3.0], "linf", 4).tolist() == [0.1, 0.5, 1.0]
    assert check_radii([0.1, 0.5, 3.0], "l2", 4).tolist() == [0.1, 0.5, 2.0]
    for bad, msg in [([0.2, 0.1], "increasing"), ([-1.0], "positive"), ([], "empty")]:
        with pytest.raises(ValueError, match=msg):
            check_radii(bad, "linf", 4)


def test_certificates_take_the_norm_and_radii_around_eps_come_from_options_for() -> None:
    model, d = tiny_mlp(0), 2
    around = LocalCertificate.options_for("l2", 0.1, d)
    assert set(around) == {"radii"} and np.array_equal(around["radii"], default_radii("l2", 0.1, d))
    np.testing.assert_allclose(around["radii"][:3], [0.025, 0.05, 0.1])  # eps/4, eps/2, eps
    cert = LocalCertificate(model, "l2", **around)
    np.testing.assert_array_equal(cert.shell_radii(d), default_radii("l2", 0.1, d))
    # without radii: the eps-free grid, geometric from diam/100 to diam
    free = LocalCertificate(model, "l2").shell_radii(d)
    np.testing.assert_allclose(free, np.geomspace(math.sqrt(2) / 100, math.sqrt(2), 8))
    assert len(CrownCertificate.options_for("linf", 0.1, d)["radii"]) > len(around["radii"])  # 12 shells
    milp = MILPCertificate.options_for("linf", 0.1, d)
    assert milp["milp_radius"] == 0.1 and milp["radii"].min() == pytest.approx(0.1)  # from eps up
    assert np.array_equal(MILPCertificate.options_for("linf", 0.0, d)["radii"], default_radii("linf", 0.0, d))
    res = cert.run(torch.rand(3, 2), torch.tensor([0, 1, 2]))
    assert res.norm == "l2"
    with pytest.raises(ValueError, match="norm must be a norm name"):
        LocalCertificate(model, ThreatModel("linf", 0.1))
    with pytest.raises(ValueError, match="unknown norm"):
        LocalCertificate(model, "l3")


def test_certified_radius_from_shells_matches_a_fine_scan() -> None:
    gen = torch.Generator().manual_seed(0)
    n, k, m = 40, 4, 5
    lip = torch.rand(n, k, m, generator=gen, dtype=torch.float64) * 3
    knots = torch.sort(torch.rand(n, m, generator=gen, dtype=torch.float64), dim=1).values + 0.01
    knots[:, -1] = 1.0
    y = torch.randint(0, k, (n,), generator=gen)
    margin = -torch.rand(n, k, generator=gen, dtype=torch.float64) * 2
    margin[0, (y[0] + 1) % k] = 0.3  # misclassified
    margin.scatter_(1, y[:, None], 0.0)
    r = certified_radius_from_shells(margin, lip, knots, y)
    t = torch.linspace(0, 1, 20001, dtype=torch.float64)
    lo = torch.cat([torch.zeros(n, 1, dtype=torch.float64), knots[:, :-1]], 1)
    inside = (torch.minimum(t[None, :, None], knots[:, None]) - lo[:, None]).clamp(min=0)  # (n, T, m)
    phi = torch.einsum("ntm,nkm->ntk", inside, lip)  # (n, T, k)
    crossed = (margin[:, None] + phi >= 0).scatter(2, y[:, None, None].expand(n, len(t), 1), False).any(2)
    first = torch.where(crossed, t[None], torch.tensor(1.0, dtype=torch.float64)).amin(dim=1)
    assert r[0] == 0
    assert torch.allclose(r, first, atol=1e-4)


def test_run_batches_restores_training_mode_and_concats() -> None:
    model = tiny_mlp(0).train()
    x, y = torch.rand(7, 2), torch.tensor([0, 1, 2, 0, 1, 2, 0])
    threat = ThreatModel("l2", 0.1, 2)
    whole = GlobalLipschitz(model, threat.norm, losses=("ce", "zero_one"), device="cpu").run(x, y)
    parts = GlobalLipschitz(model, threat.norm, losses=("ce", "zero_one"), batch_size=3, device="cpu").run(
        x, y
    )
    assert model.training
    np.testing.assert_allclose(whole.majorants["ce"].slopes, parts.majorants["ce"].slopes)
    np.testing.assert_allclose(whole.certified_radius, parts.certified_radius)
    np.testing.assert_allclose(whole.clean_loss["ce"], parts.clean_loss["ce"], rtol=1e-6)
    assert whole.n == 7 and whole.clean_correct.dtype == bool
    assert set(whole.clean_loss) == {"ce", "zero_one"} and set(whole.majorants) == {"ce"}
    joined = CertificateResult.concat([whole, parts])
    assert joined.n == 14 and joined.majorants["ce"].n == 14


def test_upper_bound_delegates_to_the_primal_solver() -> None:
    model = tiny_mlp(1)
    x = torch.rand(20, 2, generator=torch.Generator().manual_seed(1))
    y = model(x).argmax(dim=1)
    threat = ThreatModel("linf", 0.05, 2)
    res = GlobalLipschitz(model, threat.norm, losses=("ce", "zero_one"), device="cpu").run(x, y)
    ce = res.upper_bound("ce", threat)
    assert ce.sound and math.isclose(ce.clean, res.clean_loss["ce"].mean(), rel_tol=1e-9)
    lip = res.majorants["ce"].slopes[:, 0]
    assert ce.value == pytest.approx(0.05 * np.sqrt((lip**2).mean()), rel=1e-6)  # Hoelder, p = q = 2
    flips = res.upper_bound("zero_one", threat)
    assert flips.sound and flips.method == "knapsack"
    assert 0 <= 1 - flips.risk <= res.clean_correct.mean()
    with pytest.raises(ValueError, match="margin"):
        res.upper_bound("margin", threat)


def test_bad_inputs_raise_value_errors() -> None:
    model = tiny_mlp(0)
    with pytest.raises(ValueError, match="dlr"):
        GlobalLipschitz(model, "linf", losses=("dlr",))
    with pytest.raises(ValueError, match="batch_size"):
        GlobalLipschitz(model, "linf", batch_size=0)
    with pytest.raises(ValueError, match="samples"):
        GlobalLipschitz(model, "linf", device="cpu").run(torch.rand(3, 2), torch.zeros(2, dtype=torch.long))
