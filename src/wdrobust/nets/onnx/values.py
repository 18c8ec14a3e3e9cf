"""Values flowing through an ONNX graph at import time, and what one node becomes.

Every value is evaluated in two *worlds*: on random inputs of batch sizes 2 and 3. A value that does not
depend on the input's entries is static (folded at import: weights, the shape arithmetic of exported
transformers); a static value that differs between the worlds depends on the batch size only (the
batch-size entry of a Shape, a class token repeated over the batch). A dynamic value depends on the input
and is computed by a layer of the imported model; its worlds give its shape, the batch axis being the one
of size 2 in the first world and 3 in the second.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

#: Batch sizes of the two worlds.
WORLD_BATCHES = (2, 3)


@dataclass(frozen=True)
class Value:
    """A value in both worlds; dynamic when it depends on the model input's entries."""

    worlds: tuple[torch.Tensor, torch.Tensor]
    dynamic: bool

    @property
    def fixed(self) -> torch.Tensor | None:
        """The value when it is static and the same in both worlds, else None."""
        a, b = self.worlds
        if self.dynamic or a.shape != b.shape or not torch.equal(a, b):
            return None
        return a


@dataclass(frozen=True)
class Lowering:
    """What one output of an ONNX node becomes: ``module`` applied to the node's inputs at positions
    ``args``. shape_only: the module reads only its arguments' shapes, so its output is static even when
    they are dynamic (ONNX Shape)."""

    module: nn.Module
    args: tuple[int, ...]
    shape_only: bool = False


def lowering(module: nn.Module, *args: int, shape_only: bool = False) -> Lowering:
    """Lowering(module, args, shape_only)."""
    return Lowering(module, tuple(args), shape_only)
