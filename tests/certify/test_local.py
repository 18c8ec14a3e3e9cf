"""The ``local`` certificate: sound growth majorants (margin and ce) checked against dense grids."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _certify_brute import check_growth, tiny_net

from wdrobust.certify.local import LocalCertificate


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
@pytest.mark.parametrize("act", ["relu", "leaky", "gelu", "silu", "elu"])
def test_local_majorant_dominates_growth(act: str, norm: str) -> None:
    assert check_growth(LocalCertificate, act, norm, range(6)) == 6 * 3 * 2


def test_local_result_shapes_and_registry_fields() -> None:
    net = tiny_net(0, 3, "relu").float()
    x = torch.rand(5, 3)
    y = torch.tensor([0, 1, 2, 0, 1])
    res = LocalCertificate(net, "linf", losses=("ce", "margin", "zero_one"), device="cpu").run(x, y)
    assert res.method == "local" and res.sound
    assert res.majorants["margin"].knots[0, -1] == pytest.approx(1.0)
    assert res.certified_radius.shape == (5,)
    assert (res.certified_radius[~res.clean_correct] == 0).all()
    assert res.lipschitz.shape == (5,) and np.isfinite(res.lipschitz).all()
