"""An explicit adversarial distribution Q = sum_j w_j delta(x'_j, y_j) and its audit against P_N.

Each support point j carries the index src_j of the clean sample whose mass it received, so the identity
coupling (x_src_j -> x'_j) bounds the transport cost:

    W_p(Q, P_N)^p <= sum_j w_j ||x'_j - x_src_j||^p   (p < inf),   W_inf <= max_{w_j > 0} ||x'_j - x_src_j||.

Distances are computed in float64 so that the audit is as exact as the points themselves.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from safetensors.torch import save as serialize
from torch import nn

from wdrobust._atomic import atomic_write
from wdrobust._device import resolve_device
from wdrobust.primal.audit import AUDIT_RTOL, budget_limit
from wdrobust.threat import ThreatModel, lp_norm


@dataclass
class Distribution:
    """Support x: (P, *S), labels y: (P,) int64, weights: (P,) float64 summing to 1, source: (P,) int64
    indices into clean: (N, *S), the data the mass came from; threat: the threat it was built for."""

    threat: ThreatModel
    x: torch.Tensor
    y: torch.Tensor
    weights: torch.Tensor
    source: torch.Tensor
    clean: torch.Tensor

    def __post_init__(self) -> None:
        p = self.x.shape[0]
        for name in ("y", "weights", "source"):
            if getattr(self, name).shape != (p,):
                raise ValueError(f"{name} must have shape ({p},), got {tuple(getattr(self, name).shape)}")
        if self.x.shape[1:] != self.clean.shape[1:]:
            raise ValueError(f"support shape {tuple(self.x.shape[1:])} differs from data shape")
        if p and (self.source.min() < 0 or self.source.max() >= self.clean.shape[0]):
            raise ValueError("source indices out of range")
        if (self.weights < 0).any() or abs(float(self.weights.sum()) - 1.0) > 1e-9:
            raise ValueError("weights must be >= 0 and sum to 1")

    @classmethod
    def from_allocation(
        cls,
        threat: ThreatModel,
        x: torch.Tensor,
        y: torch.Tensor,
        candidates: torch.Tensor,
        low: np.ndarray,
        high: np.ndarray,
        alpha: np.ndarray,
        device: str | torch.device | None = None,
    ) -> Distribution:
        """Sample i keeps (1 - alpha_i)/N at point low_i and alpha_i/N at point high_i, where point 0 is
        x_i and point k >= 1 is candidates[i, k-1]. x: (N, *S), y: (N,), candidates: (N, M, *S)."""
        dev = resolve_device(device)
        n = x.shape[0]
        if y.shape != (n,):
            raise ValueError(f"labels must have shape ({n},), got {tuple(y.shape)}")
        if candidates.shape[0] != n or candidates.shape[2:] != x.shape[1:]:
            raise ValueError(
                f"candidates must have shape ({n}, M, {', '.join(map(str, x.shape[1:]))}), "
                f"got {tuple(candidates.shape)}"
            )
        top = int(max(low.max(initial=0), high.max(initial=0)))
        if top > candidates.shape[1]:
            raise ValueError(f"allocation uses candidate {top - 1} but only {candidates.shape[1]} were given")
        x, y, candidates = x.to(dev), y.to(dev), candidates.to(dev)
        alpha_t = torch.as_tensor(alpha, dtype=torch.float64, device=dev)
        split = torch.nonzero(alpha_t > 0).squeeze(1)
        rows = torch.cat([torch.arange(n, device=dev), split])
        cols = torch.cat([torch.as_tensor(low, device=dev), torch.as_tensor(high, device=dev)[split]])
        weights = torch.cat([1 - alpha_t, alpha_t[split]]) / n
        keep = weights > 0
        rows, cols, weights = rows[keep], cols[keep], weights[keep]
        moved = candidates[rows, (cols - 1).clamp(min=0)]
        at_clean = (cols == 0).reshape(-1, *([1] * (x.dim() - 1)))
        support = torch.where(at_clean, x[rows], moved)
        return cls(threat, support, y[rows], weights, rows, x)

    def __repr__(self) -> str:
        return (
            f"Distribution({self.x.shape[0]} support points from {self.n} samples, "
            f"W_p <= {self.wasserstein_bound():.4g}, threat: {self.threat})"
        )

    @property
    def n(self) -> int:
        """Number of data points N the mass came from."""
        return self.clean.shape[0]

    def distances(self, norm: str | None = None) -> torch.Tensor:
        """||x'_j - x_src_j|| in float64, shape (P,)."""
        diff = self.x.double() - self.clean[self.source].double()
        return lp_norm(diff, norm or self.threat.norm)

    def cost(self, threat: ThreatModel | None = None) -> float:
        """Identity-coupling cost: sum_j w_j d_j^p (p < inf), max_{w_j > 0} d_j (p = inf)."""
        threat = threat or self.threat
        d = self.distances(threat.norm)
        if math.isinf(threat.p):
            return float(d[self.weights > 0].max()) if d.numel() else 0.0
        return float((self.weights * d**threat.p).sum())

    def wasserstein_bound(self, threat: ThreatModel | None = None) -> float:
        """Upper bound on W_p(Q, P_N): cost^(1/p) (the cost itself for p = inf)."""
        threat = threat or self.threat
        c = self.cost(threat)
        return c if math.isinf(threat.p) else c ** (1 / threat.p)

    def audit(self, threat: ThreatModel | None = None, raise_error: bool = True) -> bool:
        """True when cost <= eps^p (eps for p = inf) within AUDIT_RTOL relative; else raise or False."""
        threat = threat or self.threat
        limit = budget_limit(threat)
        c = self.cost(threat)
        ok = c <= limit * (1 + AUDIT_RTOL)
        if not ok and raise_error:
            raise ValueError(f"distribution exceeds the budget ({threat}): cost {c:.6g} > {limit:.6g}")
        return ok

    def expected(
        self, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], batch_size: int = 4096
    ) -> float:
        """E_Q l = sum_j w_j l(x'_j, y_j); loss_fn maps (x (B, *S), y (B,)) to losses (B,)."""
        total = 0.0
        for a in range(0, self.x.shape[0], batch_size):
            loss = loss_fn(self.x[a : a + batch_size], self.y[a : a + batch_size]).double()
            total += float((self.weights[a : a + batch_size].to(loss.device) * loss).sum())
        return total

    def accuracy(
        self, model: nn.Module, batch_size: int = 1024, device: str | torch.device | None = None
    ) -> float:
        """Q-weighted accuracy sum_j w_j 1{argmax f(x'_j) = y_j} of ``model`` (run on ``device``)."""
        dev = resolve_device(device)

        def correct(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return (model(x.to(dev)).argmax(dim=1) == y.to(dev)).double()

        return self.expected(correct, batch_size)

    def save(self, path: str | Path) -> None:
        """Write to a safetensors file atomically (temporary file, then rename)."""
        path = Path(path)
        tensors = {
            name: getattr(self, name).detach().cpu().contiguous()
            for name in ("x", "y", "weights", "source", "clean")
        }
        meta = {"norm": self.threat.norm, "eps": repr(self.threat.eps), "p": repr(self.threat.p)}
        data = serialize(tensors, metadata=meta)  # written by Python: a full disk raises OSError
        atomic_write(path, lambda tmp: tmp.write_bytes(data))

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device | None = None) -> Distribution:
        """Read a file written by ``save`` onto ``device``."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no distribution file at {path}")
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        if not {"norm", "eps", "p"} <= meta.keys():
            raise ValueError(f"{path} is not a wdrobust distribution (missing metadata)")
        tensors = load_file(str(path), device=str(resolve_device(device)))
        threat = ThreatModel(meta["norm"], float(meta["eps"]), float(meta["p"]))
        return cls(threat, **{k: tensors[k] for k in ("x", "y", "weights", "source", "clean")})
