"""The certificate contract: ``check_certificate(cls)`` runs a registered (or new) certificate class on a
tiny random ReLU network over [0, 1]^2 and raises AssertionError naming the certificate and the broken
clause (scikit-learn's ``check_estimator`` style; tests/certify/test_registry_contract.py runs it over
``CERTIFICATES``).

Clauses: the declarations (name, sound, norms, needs_points, options whose defaults pass their own
checks), unknown options and unsupported norms refused with ValueError, and on every supported norm with
the options its ``options_for`` suggests at eps = 0.1:
- labels and shapes: method, norm, ``sound`` as the class says (result and majorants), majorants of ce
  and margin with knots (N, M) ending at diam X, clean losses and correctness as the model's, certified
  radii (N,), 0 for misclassified samples;
- soundness (sound certificates only: an estimate is labelled ``sound = False``): against brute force on
  a 41 x 41 grid of the box, phibar_i(||x' - x_i||) >= l(x') - l(x_i) for ce and margin, and no grid
  point strictly closer than the certified radius r_i is misclassified;
- determinism: a second run gives the same majorants and radii.
A certificate that ``needs_points`` gets visited points (N, 3, 2) in the box.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import nn

from wdrobust._options import check_table
from wdrobust.attacks.contract import refuses
from wdrobust.attacks.contract import require as require_of
from wdrobust.certify.base import Certificate, CertificateResult, box_diameter
from wdrobust.losses import loss_fn
from wdrobust.threat import NORMS, lp_norm

#: Samples, classes and the threat radius of the contract's setting (inputs are 2-D).
N, K, EPS = 4, 3, 0.1
#: Losses the contract certifies.
LOSSES = ("ce", "margin", "zero_one")


def setting(device: str | torch.device = "cpu") -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A seeded random ReLU MLP R^2 -> R^K (float32, eval mode) whose decision regions all cross the box
    (first-layer hyperplanes through random points of the box, output biases centring the logits over
    it), N uniform inputs labelled by it (the last label moved to the next class: one clean-misclassified
    sample), all on ``device``."""
    g = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, K))
    axis = torch.linspace(0, 1, 41)
    with torch.no_grad():
        for layer in model[::2]:
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=g) * 2)
            layer.bias.zero_()
        model[0].bias.copy_(-(model[0].weight * torch.rand(8, 2, generator=g)).sum(1))
        model[4].bias.copy_(-model(torch.cartesian_prod(axis, axis)).mean(0))
        x = torch.rand(N, 2, generator=g)
        y = model(x).argmax(1)
    y[-1] = (y[-1] + 1) % K
    return model.eval().to(device), x.to(device), y.to(device)


#: The contract's failure: AssertionError "certificate NAME: clause" unless ok (``attacks.contract.require``).
require = partial(require_of, kind="certificate")


def check_certificate(
    cls: type[Certificate], options: Mapping[str, Any] | None = None, device: str = "cpu"
) -> None:
    """Run the contract (module docstring) on the certificate class with its options (e.g. short time
    limits) on ``device``; AssertionError naming the certificate and the clause it breaks."""
    options = dict(options or {})
    require(isinstance(cls.name, str) and bool(cls.name), cls, "name must be a non-empty string")
    require(isinstance(cls.sound, bool) and isinstance(cls.needs_points, bool), cls, "sound, needs_points")
    require(bool(cls.norms) and set(cls.norms) <= set(NORMS), cls, f"norms must be among {NORMS}")
    check_table(cls.option_table(), f"certificate {cls.name!r}")
    model, x, y = setting(device)
    require(refuses(lambda: cls(model, cls.norms[0], no_such_option=1)), cls, "an unknown option is refused")
    for norm in (n for n in NORMS if n not in cls.norms):
        require(refuses(lambda n=norm: cls(model, n, **options)), cls, f"{norm} must be refused")
    visited = (
        {"visited": torch.rand(N, 3, 2, generator=torch.Generator().manual_seed(1))}
        if cls.needs_points
        else {}
    )
    for i, norm in enumerate(cls.norms):
        build = {**cls.options_for(norm, EPS, 2), **options}
        result = cls(model, norm, losses=LOSSES, device=device, **build).run(x, y, **visited)
        check_result(cls, result, model, x, y, norm)
        if i == 0:
            again = cls(model, norm, losses=LOSSES, device=device, **build).run(x, y, **visited)
            same = all(
                np.array_equal(again.majorants[k].slopes, m.slopes) for k, m in result.majorants.items()
            ) and np.array_equal(again.certified_radius, result.certified_radius)
            require(same, cls, "two runs must give the same majorants and radii")


def check_result(
    cls: type, result: CertificateResult, model: nn.Module, x: torch.Tensor, y: torch.Tensor, norm: str
) -> None:
    """The label, shape and soundness clauses of one run (module docstring)."""
    require(result.method == cls.name and result.norm == norm and result.n == N, cls, "result labels")
    require(result.sound == cls.sound, cls, f"the result must be labelled sound={cls.sound}")
    require(set(result.majorants) == {"ce", "margin"}, cls, "majorants of ce and margin")
    diam = box_diameter(norm, 2)
    for loss, maj in result.majorants.items():
        require(maj.sound == cls.sound, cls, f"the {loss} majorant must be labelled sound={cls.sound}")
        require(maj.knots.ndim == 2 and maj.knots.shape[0] == N, cls, f"{loss} knots (N, M)")
        require(np.allclose(maj.knots[:, -1], diam, rtol=1e-6), cls, f"{loss} knots must end at diam X")
    with torch.no_grad():
        z0 = model(x)
        axis = torch.linspace(0, 1, 41, device=x.device)
        grid = torch.cartesian_prod(axis, axis)
        zg = model(grid)
    correct = (z0.argmax(1) == y).cpu().numpy()
    require(np.array_equal(result.clean_correct, correct), cls, "clean_correct is not the model's")
    radius = result.certified_radius
    require(radius is not None and radius.shape == (N,), cls, "certified radii (N,) with zero_one")
    require(bool((radius[~correct] == 0).all() and (radius >= 0).all()), cls, "radius 0 when misclassified")
    t = lp_norm(grid[None].double() - x[:, None].double(), norm, batch_dims=2).cpu().numpy()  # (N, G)
    for loss in LOSSES:
        clean = loss_fn(loss, z0, y).double().cpu().numpy()
        require(
            np.allclose(result.clean_loss[loss], clean, atol=1e-5), cls, f"clean {loss} is not the model's"
        )
    if not cls.sound:
        return
    for loss, maj in result.majorants.items():
        gains = (
            np.stack([loss_fn(loss, zg, y[i].expand(len(grid))).double().cpu().numpy() for i in range(N)])
            - result.clean_loss[loss][:, None]
        )
        bound = maj.at(t)
        require(bool((gains <= bound + 1e-5 * (1 + np.abs(bound))).all()), cls, f"{loss} majorant unsound")
    wrong = np.stack([(zg.argmax(1) != y[i]).cpu().numpy() for i in range(N)])
    nearest = np.where(wrong, t, np.inf).min(axis=1)
    require(bool((nearest[correct] >= radius[correct] * (1 - 1e-6)).all()), cls, "certified radius unsound")
