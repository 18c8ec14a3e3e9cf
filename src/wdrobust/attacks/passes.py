"""Pass counting: every model call of an attack is counted per sample.

``Batch.evaluate`` adds m forward passes for m evaluated rows, ``Batch.gradient`` m forward and m
backward passes; ``AttackResult.forward_passes`` / ``backward_passes`` are these totals over all batches,
so "passes per sample" = total / N is the attack's cost in model evaluations, whatever its batching.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Passes:
    """Totals of per-sample forward and backward passes (a batch of m samples counts m)."""

    forward: int = 0
    backward: int = 0
