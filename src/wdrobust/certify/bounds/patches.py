"""Receptive-field ("patches") backward pass of CROWN for the neurons of a convolutional chain.

A neuron at position q of a feature map depends on a K x K window of each earlier map only. When the path
from a pre-activation value back to the input is a chain of Conv2d modules (zero padding, dilation 1, one
group) and elementwise activations, the coefficients of the neuron's bound on a map u (C, H, W) are kept
as that window, P (N, 2, C, K, K) with N = rows x neurons and the two specs +e_q (upper) and -e_q (lower),
and its geometry (K, S, Pad): the window of start position q = (i, j) covers rows i S - Pad ... i S - Pad
+ K - 1 (columns likewise), i.e. the column q of F.unfold(pad(u, Pad), K, stride S). Then:
- a convolution y = conv(u, W, stride s, padding p) maps P to conv_transpose2d(P, W, stride s) on the
  window geometry (K - 1) s + k, S s, Pad s + p; its bias adds sum_c b_c sum P_c. Where the kernel covers
  at least MATRIX_DENSITY of the new window (k^2 >= MATRIX_DENSITY K'^2, e.g. the first convolution of
  every chain, whose window is 1 x 1), the transposed convolution is one GEMM with its dense matrix on
  the window instead, made once per window size (``Rule.memo``). The entries outside the map face the
  zero padding of the forward pass: an activation next zeroes them (its relaxation is read as zero
  there), else (the input, a convolution) they are zeroed by a mask;
- an activation with relaxation (a_lo, b_lo, a_up, b_up) maps P to P a_lo + P+ (a_up - a_lo) and adds
  P . b_lo + P+ . (b_up - b_lo) (two batched dot products), each relaxation tensor read through the same
  windows;
- at the input, the window and the windows of x0 (zero outside the map, where P is 0) are one region per
  (row, neuron), concretised like the dense coefficients (the window is an injective view of the input
  positions, so every norm of P is the norm of the dense coefficients).
This is the dense backward pass (``bounds.propagation``) restricted to the entries that can be non-zero, so it
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
from wdrobust.certify.bounds.rule import Rule

#: A convolution on a window uses its dense matrix when its kernel covers at least this fraction of the
#: new window (k^2 / K'^2): measured on one CPU thread in float64 with ~3000 windows, one GEMM
#: beat conv_transpose2d 1.3-2.7x at fractions 1/4 to 1 and lost 2x at 1/12.
MATRIX_DENSITY = 0.25

#: Window coefficient entries (rows x neurons x 2 specs x window) per group of neurons of one pass: measured
#: on one CPU thread in float64 on a 28x28 CNN (loaded machine), 2^20 (8 MiB) was 1.1x faster than 2^21,
#: 1.3x than 2^18 and 1.8x than 2^23 (the passes are bound by memory traffic; overheads grow with the count).
GROUP_ENTRIES = 1 << 20


@dataclass(frozen=True)
class Window:
    """Window geometry on one map: size k (square), stride s and padding p relative to the start map, whose
    width is ``width``."""

    k: int
    s: int
    p: int
    width: int

    def read(self, t: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
        """The windows of t (R, C, H, W) at the start positions where (n,) (flat indices into the start
        map, the same for every row): (R, n, C, k, k), zero outside the map. One gather from the map
        padded by p (and by k more at the bottom and right, so that no window leaves it), of the window
        entries only."""
        r, c, h, w = t.shape
        hp, wp = h + 2 * self.p + self.k, w + 2 * self.p + self.k
        ar = torch.arange(self.k, device=t.device)
        chans = torch.arange(c, device=t.device)[:, None, None]
        offsets = (chans * (hp * wp) + ar[:, None] * wp + ar).flatten()
        base = (where // self.width) * (self.s * wp) + (where % self.width) * self.s
        padded = F.pad(t, (self.p, self.p + self.k, self.p, self.p + self.k)).flatten(1)
        picked = padded.index_select(1, (base[:, None] + offsets).flatten())
        return picked.reshape(r, where.numel(), c, self.k, self.k)


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


def _window_matrix(conv: nn.Conv2d, c: int, size: int) -> torch.Tensor:
    """The dense matrix (c size^2, C_in K'^2) of conv_transpose2d(., W, stride s) on (c, size, size)
    windows, K' = (size - 1) s + k: row i is the transpose of the i-th basis window."""
    eye = torch.eye(c * size * size, dtype=conv.weight.dtype, device=conv.weight.device)
    out = F.conv_transpose2d(eye.reshape(-1, c, size, size), conv.weight, stride=conv.stride[0])
    return out.reshape(eye.shape[0], -1)


def _transpose_conv(rule: Rule, lam: torch.Tensor) -> torch.Tensor:
    """conv_transpose2d of the windows lam (N, 2, C_out, K, K) with the convolution of rule.op: (N, 2,
    C_in, K', K'), K' = (K - 1) s + k, by its window matrix when dense enough (module docstring)."""
    m: nn.Conv2d = rule.op
    size, k, s = lam.shape[-1], m.kernel_size[0], m.stride[0]
    out = (size - 1) * s + k
    if k * k >= MATRIX_DENSITY * out * out:
        mat = rule.memo(("window", size), (m.weight,), lambda: _window_matrix(m, lam.shape[2], size))
        return (lam.flatten(2) @ mat).reshape(*lam.shape[:2], m.in_channels, out, out)
    flat = F.conv_transpose2d(lam.flatten(0, 1), m.weight, stride=s)
    return flat.reshape(*lam.shape[:2], *flat.shape[1:])


def _dot(lam: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The sums over the window of lam (N, 2, *W) times t (N, 1, *W): (N, 2), one batched product."""
    return (lam.flatten(2) @ t.reshape(t.shape[0], -1, 1)).squeeze(2)


def patch_backward(
    chain: list[fx.Node],
    rules: dict[fx.Node, Rule],
    relaxation: Callable[[fx.Node], Relaxation],
    shapes: dict[fx.Node, tuple[int, ...]],
    idx: torch.Tensor,
    rows: torch.Tensor,
    dtype: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor, Window, torch.Tensor]:
    """(P (R n, 2, C_in, K, K), bias (R n, 2), input window, positions (n,)) for the flat entries idx (n,)
    of the chain's start value on the rows (R,): the specs +e and -e of each neuron pushed back to the
    input (module docstring). rules: the nodes' bound rules (a convolution's ``op`` is its module);
    relaxation(act) gives the activation's (B, *S) relaxation tensors; shapes the per-row shape of every
    value on the chain."""
    start = chain[0]
    c0, h0, w0 = shapes[start]
    n, r = idx.numel(), rows.numel()
    where = idx % (h0 * w0)
    lam = torch.zeros((r * n, 2, c0, 1, 1), dtype=dtype, device=idx.device)
    flat = torch.arange(r * n, device=idx.device)
    chan = (idx // (h0 * w0)).repeat(r)
    lam[flat, 0, chan] = 1.0
    lam[flat, 1, chan] = -1.0
    bias = lam.new_zeros((r * n, 2))
    win = Window(1, 1, 0, w0)
    for node in chain:
        rule = rules[node]
        if isinstance(rule, ActivationRule):
            rel = relaxation(node)
            a_lo, b_lo, a_up, b_up = (t[rows] for t in (rel.a_lo, rel.b_lo, rel.a_up, rel.b_up))
            a_lo, d_a, b_lo, d_b = (
                win.read(t, where).flatten(0, 1).unsqueeze(1) for t in (a_lo, a_up - a_lo, b_lo, b_up - b_lo)
            )
            pos = lam.clamp(min=0)
            bias = bias + _dot(lam, b_lo) + _dot(pos, d_b)
            lam = torch.addcmul(lam * a_lo, pos, d_a)
            continue
        m = rule.op
        if m.bias is not None:
            bias = bias + lam.sum(dim=(3, 4)) @ m.bias
        lam = _transpose_conv(rule, lam)
        win = Window(lam.shape[-1], win.s * m.stride[0], win.p * m.stride[0] + m.padding[0], w0)
        u = node.all_input_nodes[0]
        if not isinstance(rules.get(u), ActivationRule):  # the input or a convolution: zero the outside
            ones = torch.ones((1, 1, *shapes[u][1:]), dtype=dtype, device=idx.device)
            inside = win.read(ones, where).reshape(1, n, 1, 1, win.k, win.k)
            lam = (lam.reshape(r, n, 2, *lam.shape[2:]) * inside).flatten(0, 1)
    return lam, bias, win, where
