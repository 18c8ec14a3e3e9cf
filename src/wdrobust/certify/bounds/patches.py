"""Receptive-field ("patches") backward pass of CROWN for the neurons of a convolutional chain.

A neuron at position q of a feature map depends on a K x K window of each earlier map only. When the path
from a pre-activation value back to the input is a chain of Conv2d modules (zero padding, dilation 1, one
group) and elementwise activations, the coefficients of the neuron's bound on a map u (C, H, W) are kept
as that window, P (N, 2, C, K, K) with N = rows x neurons and the two specs +e_q (upper) and -e_q (lower),
and its geometry (K, S, Pad): the window of start position q = (i, j) covers rows i S - Pad ... i S - Pad
+ K - 1 (columns likewise), i.e. the column q of F.unfold(pad(u, Pad), K, stride S). Then:
- a convolution y = conv(u, W, stride s, padding p) maps P to conv_transpose2d(P, W, stride s) on the
  window geometry (K - 1) s + k, S s, Pad s + p, zeroed outside the map (those entries face the zero
  padding of the forward pass); its bias adds sum_c b_c sum P_c;
- an activation with relaxation (a_lo, b_lo, a_up, b_up) maps P to P a_lo + P+ (a_up - a_lo) and adds
  P . b_lo + P+ . (b_up - b_lo), each relaxation tensor read through the same windows;
- at the input, the window and the windows of x0 (zero outside the map, where P is 0) are one region per
  (row, neuron), concretised like the dense coefficients (the window is an injective view of the input
  positions, so every norm of P is the norm of the dense coefficients).
This is the dense backward pass (``bounds.crown``) restricted to the entries that can be non-zero, so it
gives the same bounds; the cost per neuron is the window size instead of the map size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import fx, nn

from wdrobust.certify.bounds.activations import ActivationRule
from wdrobust.certify.bounds.relax import Relaxation


@dataclass(frozen=True)
class Window:
    """Window geometry on one map: size k (square), stride s and padding p relative to the start map."""

    k: int
    s: int
    p: int

    def read(self, t: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
        """The windows of t (R, C, H, W) at the start positions where (R, n) (flat indices into the start
        map): (R, n, C, k, k), zero outside the map."""
        r, c = t.shape[:2]
        cols = F.unfold(F.pad(t, (self.p,) * 4), self.k, stride=self.s)  # (R, C k k, L)
        picked = cols.gather(2, where.unsqueeze(1).expand(-1, cols.shape[1], -1))  # (R, C k k, n)
        return picked.transpose(1, 2).reshape(r, where.shape[1], c, self.k, self.k)


def conv_chain(start: fx.Node, rules: dict, modules: Callable[[str], nn.Module]) -> list[fx.Node] | None:
    """The nodes from start back to the graph input when they form a chain of square, zero-padded, one-group,
    dilation-1 Conv2d modules and elementwise activations (each node's only interval argument being the
    previous one), else None. modules(target) gives a call_module node's module."""
    chain, node = [], start
    while node.op != "placeholder":
        rule = rules.get(node)
        if node.op == "call_module" and isinstance(modules(node.target), nn.Conv2d):
            m = modules(node.target)
            square = m.kernel_size[0] == m.kernel_size[1] and m.stride[0] == m.stride[1]
            if not (square and m.padding[0] == m.padding[1] and m.padding_mode == "zeros"):
                return None
            if m.groups != 1 or m.dilation != (1, 1) or isinstance(m.padding, str):
                return None
        elif not isinstance(rule, ActivationRule):
            return None
        args = [a for a in node.all_input_nodes]
        if len(args) != 1:
            return None
        chain.append(node)
        node = args[0]
    return chain


def patch_backward(
    chain: list[fx.Node],
    modules: Callable,
    relaxation: Callable[[fx.Node], Relaxation],
    shapes: dict[fx.Node, tuple[int, ...]],
    idx: torch.Tensor,
    rows: torch.Tensor,
    dtype: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor, Window, torch.Tensor]:
    """(P (R n, 2, C_in, K, K), bias (R n, 2), input window, positions (R, n)) for the flat entries idx (n,)
    of the chain's start value on the rows (R,): the specs +e and -e of each neuron pushed back to the
    input (module docstring). relaxation(act) gives the activation's (B, *S) relaxation tensors; shapes
    the per-row shape of every value on the chain."""
    start = chain[0]
    c0, h0, w0 = shapes[start]
    n, r = idx.numel(), rows.numel()
    where = (idx % (h0 * w0)).expand(r, -1)
    lam = torch.zeros((r * n, 2, c0, 1, 1), dtype=dtype, device=idx.device)
    flat = torch.arange(r * n, device=idx.device)
    chan = (idx // (h0 * w0)).repeat(r)
    lam[flat, 0, chan] = 1.0
    lam[flat, 1, chan] = -1.0
    bias = lam.new_zeros((r * n, 2))
    win = Window(1, 1, 0)
    for node in chain:
        if node.op == "call_module" and isinstance(modules(node.target), nn.Conv2d):
            m = modules(node.target)
            if m.bias is not None:
                bias = bias + (lam.sum(dim=(3, 4)) * m.bias).sum(dim=2)
            k, s, p = m.kernel_size[0], m.stride[0], m.padding[0]
            size = lam.shape[-1]
            lam = F.conv_transpose2d(lam.flatten(0, 1), m.weight, stride=s)
            lam = lam.reshape(r * n, 2, *lam.shape[1:])
            win = Window((size - 1) * s + k, win.s * s, win.p * s + p)
            u_shape = shapes[node.all_input_nodes[0]]
            ones = torch.ones((1, 1, *u_shape[1:]), dtype=dtype, device=idx.device)
            inside = win.read(ones, where[:1]).reshape(1, n, 1, 1, win.k, win.k)
            lam = (lam.reshape(r, n, 2, *lam.shape[2:]) * inside).flatten(0, 1)
            continue
        rel = relaxation(node)
        a_lo, b_lo, a_up, b_up = (
            win.read(t[rows], where).flatten(0, 1).unsqueeze(1)
            for t in (rel.a_lo, rel.b_lo, rel.a_up, rel.b_up)
        )
        pos = lam.clamp(min=0)
        bias = bias + (lam * b_lo + pos * (b_up - b_lo)).flatten(2).sum(dim=2)
        lam = lam * a_lo + pos * (a_up - a_lo)
    return lam, bias, win, where
