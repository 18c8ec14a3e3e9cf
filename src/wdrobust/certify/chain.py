"""A feed-forward network as a chain of linear blocks separated by elementwise activations.

f(x) = A_L(s_{L-1}(... s_1(A_1 x + b_1) ...)) + b_L, where every block A_l + b_l is the composition of
consecutive affine leaves (Linear, Conv2d, BatchNorm in eval mode, Normalize, Flatten, AvgPool, Dropout,
Identity) and s_l is an activation with |s_l'| <= ``ACTIVATION_SLOPE``. Used by the certificates that need
the weights (global, milp). Only nested ``nn.Sequential`` models are chains; anything else raises a
ValueError naming the module. Every block computes in float64 on copies of the weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from wdrobust.nets.layers import Normalize

Fn = Callable[[torch.Tensor], torch.Tensor]

#: Blocks with at most this many matrix entries d_in * d_out are materialised as dense matrices.
MATERIALISE_LIMIT = 1 << 22


def activation_slope(module: nn.Module) -> float | None:
    """sup_t |s'(t)| of an elementwise activation module, or None when the module is not one.

    ReLU, Tanh: 1; Sigmoid: 1/4; LeakyReLU(a): max(1, |a|); ELU(alpha): max(1, alpha);
    GELU: 1.1290 (true max 1.12899 for the tanh form, 1.12890 exact); SiLU: 1.0999 (true max 1.09984).
    The last two are rounded up, so each value is an upper bound.
    """
    if isinstance(module, nn.ReLU | nn.Tanh):
        return 1.0
    if isinstance(module, nn.Sigmoid):
        return 0.25
    if isinstance(module, nn.LeakyReLU):
        return max(1.0, abs(module.negative_slope))
    if isinstance(module, nn.ELU):
        return max(1.0, float(module.alpha))
    if isinstance(module, nn.GELU):
        return 1.1290
    if isinstance(module, nn.SiLU):
        return 1.0999
    return None


@dataclass
class AffineOp:
    """One affine leaf u -> linear(u) + offset: ``affine`` (with bias), ``linear`` (no bias) and
    ``abs_linear`` (the same map with every weight replaced by its absolute value, |A| u)."""

    affine: Fn
    linear: Fn
    abs_linear: Fn


def _shape_op(module: nn.Module) -> AffineOp:
    return AffineOp(module, module, module)


def _diag_op(scale: torch.Tensor, shift: torch.Tensor) -> AffineOp:
    return AffineOp(lambda u: u * scale + shift, lambda u: u * scale, lambda u: u * scale.abs())


def affine_op(module: nn.Module, dtype: torch.dtype) -> AffineOp | None:
    """The AffineOp of an affine leaf module (float64 weight copies), or None if it is not affine."""
    if isinstance(module, nn.Flatten | nn.Identity | nn.Dropout | nn.AvgPool2d | nn.AdaptiveAvgPool2d):
        return _shape_op(module)
    if isinstance(module, nn.Linear):
        w = module.weight.detach().to(dtype)
        b = None if module.bias is None else module.bias.detach().to(dtype)
        return AffineOp(lambda u: F.linear(u, w, b), lambda u: F.linear(u, w), lambda u: F.linear(u, w.abs()))
    if isinstance(module, nn.Conv2d):
        if module.padding_mode != "zeros":
            raise ValueError(f"unsupported Conv2d padding_mode {module.padding_mode!r} (only 'zeros')")
        w = module.weight.detach().to(dtype)
        b = None if module.bias is None else module.bias.detach().to(dtype)
        args = (module.stride, module.padding, module.dilation, module.groups)
        return AffineOp(
            lambda u: F.conv2d(u, w, b, *args),
            lambda u: F.conv2d(u, w, None, *args),
            lambda u: F.conv2d(u, w.abs(), None, *args),
        )
    if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
        if module.running_var is None or module.running_mean is None:
            raise ValueError("BatchNorm without running statistics cannot be certified")
        scale = torch.rsqrt(module.running_var.detach().to(dtype) + module.eps)
        if module.weight is not None:
            scale = scale * module.weight.detach().to(dtype)
        shift = -module.running_mean.detach().to(dtype) * scale
        if module.bias is not None:
            shift = shift + module.bias.detach().to(dtype)
        view = (1, -1, 1, 1) if isinstance(module, nn.BatchNorm2d) else (1, -1)
        return _diag_op(scale.reshape(view), shift.reshape(view))
    if isinstance(module, Normalize):
        scale = 1.0 / module.std.detach().to(dtype)
        return _diag_op(scale, -module.mean.detach().to(dtype) * scale)
    return None


def leaves(model: nn.Module) -> list[nn.Module]:
    """The leaf modules of a (nested) nn.Sequential in call order; other containers raise ValueError."""
    if isinstance(model, nn.Sequential):
        return [leaf for child in model for leaf in leaves(child)]
    if any(True for _ in model.children()):
        raise ValueError(f"unsupported module {type(model).__name__}: only nested nn.Sequential chains")
    return [model]


class Block:
    """A composition of affine leaves u (n, *in_shape) -> (n, *out_shape) in float64.

    ``matrix`` is the dense (d_out, d_in) matrix A when d_in * d_out <= MATERIALISE_LIMIT, else None.
    """

    def __init__(self, ops: list[AffineOp], in_shape: tuple[int, ...], device: torch.device) -> None:
        self.ops = ops
        self.in_shape = in_shape
        self.device = device
        probe = torch.zeros((1, *in_shape), dtype=torch.float64, device=device)
        out = self.affine(probe)
        self.out_shape = tuple(out.shape[1:])
        self.offset = out[0].reshape(-1)
        self.d_in, self.d_out = math.prod(in_shape), math.prod(self.out_shape)
        self.matrix: torch.Tensor | None = None
        if self.d_in * self.d_out <= MATERIALISE_LIMIT:
            eye = torch.eye(self.d_in, dtype=torch.float64, device=device).reshape(self.d_in, *in_shape)
            self.matrix = self.linear(eye).reshape(self.d_in, self.d_out).T.contiguous()

    def _chain(self, u: torch.Tensor, which: str) -> torch.Tensor:
        for op in self.ops:
            u = getattr(op, which)(u)
        return u

    def affine(self, u: torch.Tensor) -> torch.Tensor:
        """A u + b, shape (n, *in_shape) -> (n, *out_shape)."""
        return self._chain(u, "affine")

    def linear(self, u: torch.Tensor) -> torch.Tensor:
        """A u."""
        return self._chain(u, "linear")

    def _vjp(self, v: torch.Tensor, which: str) -> torch.Tensor:
        u = torch.zeros((v.shape[0], *self.in_shape), dtype=torch.float64, device=self.device)
        u.requires_grad_(True)
        with torch.enable_grad():
            (out,) = torch.autograd.grad(self._chain(u, which), u, grad_outputs=v)
        return out

    def transpose(self, v: torch.Tensor) -> torch.Tensor:
        """A^T v, shape (n, *out_shape) -> (n, *in_shape) (exact)."""
        if self.matrix is not None:
            return (v.reshape(v.shape[0], -1) @ self.matrix).reshape(v.shape[0], *self.in_shape)
        return self._vjp(v, "linear")

    def abs_transpose(self, v: torch.Tensor) -> torch.Tensor:
        """An elementwise upper bound of |A|^T v for v >= 0: |A|^T v itself when A is materialised,
        else |A_1|^T ... |A_k|^T v over the leaves (>= |A|^T v because |A_k ... A_1| <= |A_k| ... |A_1|)."""
        if self.matrix is not None:
            return (v.reshape(v.shape[0], -1) @ self.matrix.abs()).reshape(v.shape[0], *self.in_shape)
        return self._vjp(v, "abs_linear")

    def spectral_bound(self) -> float:
        """An upper bound of ||A||_2: the exact largest singular value (SVD) of a materialised A, else
        sqrt(||A||_1 ||A||_inf) <= sqrt(max(|A|^T 1) max(|A| 1)) with the leaf-wise |A| chain."""
        if self.matrix is not None:
            return float(torch.linalg.matrix_norm(self.matrix, ord=2))
        ones_in = torch.ones((1, *self.in_shape), dtype=torch.float64, device=self.device)
        ones_out = torch.ones((1, *self.out_shape), dtype=torch.float64, device=self.device)
        row = float(self._chain(ones_in, "abs_linear").max())
        col = float(self.abs_transpose(ones_out).max())
        return math.sqrt(row * col)


@dataclass
class Chain:
    """blocks A_1 .. A_L and activations s_1 .. s_{L-1} between them (``activations[l]`` follows
    ``blocks[l]``), with slopes[l] = sup |s_l'|."""

    blocks: list[Block]
    activations: list[nn.Module]
    slopes: list[float]


def build_chain(model: nn.Module, input_shape: tuple[int, ...], device: torch.device) -> Chain:
    """Split a Sequential model into affine blocks and activations for inputs of shape (n, *input_shape).

    An unsupported leaf raises ValueError naming its class; two activations in a row give an empty
    (identity) block between them.
    """
    blocks: list[Block] = []
    activations: list[nn.Module] = []
    ops: list[AffineOp] = []
    shape = tuple(input_shape)
    for leaf in leaves(model):
        op = affine_op(leaf, torch.float64)
        if op is not None:
            ops.append(op)
            continue
        if activation_slope(leaf) is None:
            raise ValueError(f"unsupported layer {type(leaf).__name__} for a weight-based certificate")
        blocks.append(Block(ops, shape, device))
        shape = blocks[-1].out_shape
        activations.append(leaf)
        ops = []
    blocks.append(Block(ops, shape, device))
    return Chain(blocks, activations, [float(activation_slope(a)) for a in activations])
