"""A verification problem: a network and a VNN-LIB property, in the forms the attack and the bounds use."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from torch import nn

from wdrobust.certify.bounds import BoundGraph
from wdrobust.certify.bounds.region import Region
from wdrobust.data.vnnlib import Property


class Network:
    """A network (float32, eval) on inputs (B, *input_shape) with its float64 copy and bound graph, built
    once and shared by the properties of a benchmark that use it."""

    def __init__(self, model: nn.Module) -> None:
        if not hasattr(model, "input_shape"):
            raise ValueError("verify takes an imported ONNX network (a module with input_shape)")
        self.model = model.eval()
        self.shape = tuple(model.input_shape)

    @cached_property
    def model64(self) -> nn.Module:
        """A float64 copy of the model (re-checks and bounds)."""
        return copy.deepcopy(self.model).double().eval()

    @cached_property
    def graph(self) -> BoundGraph:
        """The bound graph of the float64 model."""
        return BoundGraph(self.model64)


@dataclass
class Problem:
    """net: the network; prop: its property (box and disjuncts, flat over inputs and outputs). Derived: the
    box as a Region (1, *input_shape), float64, and the disjuncts stacked into rows c (1, M, K),
    d (1, M) with the disjunct index of each row (M,). ValueError when the sizes do not match."""

    net: Network
    prop: Property

    def __post_init__(self) -> None:
        if math.prod(self.net.shape) != self.prop.lo.size:
            raise ValueError(
                f"the property has {self.prop.lo.size} inputs, the network takes "
                f"{math.prod(self.net.shape)} {self.net.shape}"
            )
        k = self.outputs64(self.prop.lo).size
        if self.prop.n_outputs != k:
            raise ValueError(f"the property has {self.prop.n_outputs} outputs, the network gives {k}")
        sizes = [c.shape[0] for c, _ in self.prop.disjuncts]
        self.c = torch.tensor(np.concatenate([c for c, _ in self.prop.disjuncts]), dtype=torch.float64)[None]
        self.d = torch.tensor(np.concatenate([d for _, d in self.prop.disjuncts]), dtype=torch.float64)[None]
        self.disjunct = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
        self.region = Region.box(self.batch64(self.prop.lo), self.batch64(self.prop.hi))

    @property
    def graph(self) -> BoundGraph:
        return self.net.graph

    def batch64(self, flat: np.ndarray) -> torch.Tensor:
        """A flat input (n_in,) as a float64 batch of one (1, *input_shape)."""
        return torch.tensor(flat, dtype=torch.float64).reshape(1, *self.net.shape)

    def outputs64(self, x: np.ndarray) -> np.ndarray:
        """The float64 outputs (K,) at a flat input x (n_in,)."""
        with torch.no_grad():
            return self.net.model64(self.batch64(x)).flatten().numpy()

    def holds(self, x: np.ndarray) -> bool:
        """x (n_in,) is a counterexample, by a float64 forward pass: x lies in [lo, hi] and its outputs y
        satisfy some disjunct (every row of C y + d <= 0)."""
        if not ((x >= self.prop.lo) & (x <= self.prop.hi)).all():
            return False
        y = self.outputs64(x)
        return any(bool((c @ y + d <= 0).all()) for c, d in self.prop.disjuncts)
