"""The ``radius`` certificate: no point within the certified radius changes the predicted label."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _certify_brute import box_points, tiny_net

from wdrobust.certify.bounds import BoundGraph
from wdrobust.certify.radius import RadiusCertificate, verified_radius
from wdrobust.threat import lp_norm


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
@pytest.mark.parametrize("act", ["relu", "gelu", "silu", "elu", "leaky"])
def test_no_flip_within_certified_radius(act: str, norm: str) -> None:
    positive = 0
    for seed in range(8):
        d = 2 + seed % 2
        net = tiny_net(seed, d, act).float()
        x = torch.rand(4, d, generator=torch.Generator().manual_seed(seed))
        y = torch.tensor([0, 1, 2, 0])
        res = RadiusCertificate(net, norm, device="cpu", **RadiusCertificate.options_for(norm, 0.05, d)).run(
            x, y
        )
        assert res.sound and res.method == "radius"
        r = torch.as_tensor(res.certified_radius, dtype=torch.float32)
        assert (r[~torch.as_tensor(res.clean_correct)] == 0).all()
        pts = box_points(d, seed).float()
        with torch.no_grad():
            labels = net(pts).argmax(dim=1)
            for i in range(4):
                inside = lp_norm(pts - x[i], norm) < r[i]
                assert (labels[inside] == y[i]).all(), (seed, i, float(r[i]))
        positive += int((r > 0).sum())
    assert positive > 0  # the check is not vacuous


def test_interval_route_is_sound_and_misclassified_get_zero() -> None:
    net = tiny_net(4, 2, "relu").float()
    x = torch.rand(6, 2, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        pred = net(x).argmax(dim=1)
    y = pred.clone()
    y[0] = (pred[0] + 1) % 3  # misclassified
    res = RadiusCertificate(net, "linf", device="cpu", **RadiusCertificate.options_for("linf", 0.05, 2)).run(
        x, y
    )
    assert res.certified_radius[0] == 0
    ibp = verified_radius(BoundGraph(net), x, y, "linf", 1.0)
    assert (np.asarray(res.certified_radius[1:]) >= ibp[1:].numpy() - 1e-7).all()
