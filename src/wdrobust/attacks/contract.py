"""The attack contract: ``check_attack(cls)`` runs a registered (or new) attack class on a tiny random ReLU
network and raises AssertionError naming the attack and the broken clause (scikit-learn's
``check_estimator`` style; tests/attacks/test_registry_contract.py runs it over ``ATTACKS``).

Clauses: the declarations (name, norms, options whose defaults pass their own checks), unknown options
and unsupported norms refused with ValueError, and on every supported norm at p = 2:
- shapes: t (N, M), gains and clean losses of every recorded loss, clean_correct (N,) bool, points
  (N, M, *S) with keep_points (None without);
- the audit of the candidates: every point lies in the box [0, 1]^d, its distance to x_i is the recorded
  t_ik (rounded up by at most 1e-5 relative), its gains are the model's losses there minus the clean
  losses, the flip distance is at most the distance of any misclassified candidate, and the primal
  lower bound of every loss passes its budget audit (``LowerBound.budget_ok``);
- the pass counts are the model's per-sample forward and backward passes, the model runs in eval mode
  and gets its training flag back;
- determinism: a second run with the same seed gives the same candidates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from wdrobust._options import check_table
from wdrobust.attacks.base import Attack, AttackResult
from wdrobust.losses import loss_fn
from wdrobust.primal import lower_bound
from wdrobust.threat import NORMS, ThreatModel, lp_norm

#: Samples, input dimension and classes of the contract's setting.
N, D, K = 6, 6, 4
#: The default threat radius of the contract runs (p = 2).
EPS = 0.1


class Counted(nn.Module):
    """A model that counts its per-sample forward passes and backward passes through the logits and
    records the training flag of every forward."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model, self.forward_count, self.backward_count, self.flags = model, 0, 0, []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.flags.append(self.training)
        z = self.model(x)
        n = x.shape[0]
        self.forward_count += n
        if z.requires_grad:
            z.register_hook(lambda grad: self._backward(n))
        return z

    def _backward(self, n: int) -> None:
        self.backward_count += n


def setting(device: str | torch.device = "cpu") -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A seeded random ReLU MLP R^D -> R^K with O(1) logit gaps, N uniform inputs labelled by it (the
    last label moved to the next class: one clean-misclassified sample), all on ``device``."""
    g = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Linear(D, 16), nn.ReLU(), nn.Linear(16, K))
    with torch.no_grad():
        for layer in (model[0], model[2]):
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=g) * 1.5)
            layer.bias.copy_(torch.randn(layer.bias.shape, generator=g) * 0.2)
    x = torch.rand(N, D, generator=g)
    with torch.no_grad():
        y = model(x).argmax(1)
    y[-1] = (y[-1] + 1) % K
    return model.to(device), x.to(device), y.to(device)


def require(ok: bool, cls: type, clause: str, kind: str = "attack") -> None:
    """Raise AssertionError "KIND NAME: clause" unless ok (kept under python -O, unlike assert)."""
    if not ok:
        raise AssertionError(f"{kind} {cls.name!r}: {clause}")


def refuses(build: Callable[[], Any]) -> bool:
    """Whether build() raises ValueError."""
    try:
        build()
    except ValueError:
        return True
    return False


def check_attack(
    cls: type[Attack],
    options: Mapping[str, Any] | None = None,
    device: str = "cpu",
    eps: float = EPS,
    runs: bool = True,
) -> None:
    """Run the contract (module docstring) on the attack class with its options (e.g. few steps, to
    keep it fast) on ``device`` at the radius eps (p = 2); runs=False checks the declarations and the
    refusals only (an attack too slow to run where the contract runs). AssertionError naming the attack
    and the clause it breaks."""
    options = dict(options or {})
    require(isinstance(cls.name, str) and bool(cls.name), cls, "name must be a non-empty string")
    require(bool(cls.norms) and set(cls.norms) <= set(NORMS), cls, f"norms must be among {NORMS}")
    check_table(cls.option_table(), f"attack {cls.name!r}")
    model, x, y = setting(device)
    unknown = refuses(lambda: cls(model, ThreatModel(cls.norms[0], eps, 2), no_such_option=1))
    require(unknown, cls, "an unknown option must raise ValueError")
    for norm in (n for n in NORMS if n not in cls.norms):
        require(
            refuses(lambda n=norm: cls(model, ThreatModel(n, eps, 2), **options)), cls, f"{norm} is refused"
        )
    for i, norm in enumerate(cls.norms if runs else ()):
        threat = ThreatModel(norm, eps, 2)
        counted = Counted(model).train()
        result = cls(counted, threat, seed=3, keep_points=True, device=device, **options).run(x, y)
        require(counted.training and not any(counted.flags), cls, "must run in eval mode and restore it")
        require(
            (result.forward_passes, result.backward_passes)
            == (counted.forward_count, counted.backward_count),
            cls,
            f"counted passes {result.forward_passes}, {result.backward_passes} but the model saw "
            f"{counted.forward_count}, {counted.backward_count}",
        )
        check_result(cls, result, model, x, y, threat)
        if i == 0:
            again = cls(model, threat, seed=3, device=device, **options).run(x, y)
            require(again.points is None, cls, "points must be None without keep_points")
            same = np.array_equal(again.t, result.t) and all(
                np.array_equal(again.gains[k], v) for k, v in result.gains.items()
            )
            require(same, cls, "two runs with the same seed must give the same candidates")


def check_result(
    cls: type, result: AttackResult, model: nn.Module, x: torch.Tensor, y: torch.Tensor, threat: ThreatModel
) -> None:
    """The shape and audit clauses of one run with keep_points (module docstring)."""
    n, m = result.t.shape
    require(result.attack == cls.name and result.threat == threat and n == N and m >= 1, cls, "result labels")
    require(
        set(result.gains) == set(result.clean_loss) and "zero_one" in result.gains, cls, "losses recorded"
    )
    require(result.clean_correct.shape == (N,) and result.clean_correct.dtype == bool, cls, "clean_correct")
    require(result.points is not None and tuple(result.points.shape) == (N, m, D), cls, "points (N, M, *S)")
    finite = np.isfinite(result.t)
    require(bool((result.t[finite] >= 0).all()), cls, "distances must be >= 0 (inf = padding)")
    points = result.points.to(x.device, torch.float32)
    flat = points.reshape(N * m, D)[torch.as_tensor(finite.reshape(-1), device=x.device)]
    require(bool(((flat >= 0) & (flat <= 1)).all()), cls, "every candidate must lie in the box [0, 1]^d")
    exact = lp_norm((points.double() - x.double()[:, None]).reshape(N * m, D), threat.norm).reshape(N, m)
    exact = exact.cpu().numpy()
    honest = (exact[finite] <= result.t[finite]) & (result.t[finite] <= exact[finite] * (1 + 1e-5) + 1e-7)
    require(bool(honest.all()), cls, "a recorded distance t_ik is not ||x_ik - x_i||")
    with torch.no_grad():
        z = model(points.reshape(N * m, D))
        z0 = model(x)
    for loss, gains in result.gains.items():
        require(gains.shape == (N, m) and result.clean_loss[loss].shape == (N,), cls, f"{loss} shapes")
        clean = loss_fn(loss, z0, y).double().cpu().numpy()
        at = loss_fn(loss, z, y.repeat_interleave(m)).double().cpu().numpy().reshape(N, m) - clean[:, None]
        require(
            np.allclose(result.clean_loss[loss], clean, atol=1e-4), cls, f"clean {loss} is not the model's"
        )
        require(np.allclose(gains[finite], at[finite], atol=1e-4), cls, f"{loss} gains are not the model's")
        bound = lower_bound(result.attained(loss), threat, clean=result.clean_loss[loss])
        require(bool(bound.budget_ok), cls, f"the {loss} lower bound fails its budget audit")
    if result.flip_distance is not None:
        flipped = np.where(finite & (result.gains["zero_one"] > 0), result.t, np.inf).min(axis=1)
        require(bool((result.flip_distance <= flipped).all()), cls, "a flip closer than flip_distance")
