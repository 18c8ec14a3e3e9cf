"""The ``global`` certificate (sound): one Lipschitz constant per class pair from the weights alone.

The model is traced once into the bound engine's graph (``BoundGraph``, on a float64 copy); its affine
segments are dense matrices M (``bounds.dense``), and every nonlinear rule states its global facts
(``Rule.use_global_slopes``, ``Rule.l2_gain``; activations read sup |sigma'| from the activation table).
For c = e_j - e_y, grad m_j(x) is c pushed back through the graph with each nonlinearity's derivative at x.
Two sound bounds of sup_x ||grad m_j(x)||_*:

- absolute-value pass (every norm): the engine's interval backward pass of c with every derivative set to
  its global range (activations: [-s, s], s = sup |sigma'|; max pooling: [0, 1] per window entry). On a
  chain it is |grad m_j| <= s_1 |M_1|^T s_2 |M_2|^T ... s_{L-1} |M_L^T c| elementwise, and on any DAG the
  interval arithmetic (sums at residual joins) keeps it an elementwise bound, so ||grad m_j||_* <= ||that
  vector||_*. For the linf threat (dual l1) this is the || |c^T M_L| |M_{L-1}| ... |M_1| ||_1 bound; it is
  never larger than the product of the induced l_inf -> l_inf norms (max row l1 sums) and, for the l1
  threat, of the l1 -> l1 norms (max column sums).
- Lipschitz product (l2 threat): a forward pass of scalar l2 constants K(v) >= Lip_2(x -> v(x)):
  K(input) = 1; a segment: K(end) = K(start) ||M||_2 (``Dense.spectral_bound``: exact SVD of a
  materialised M, else the certified sqrt(||M||_1 ||M||_inf)); any other node v = f(u_1, .., u_n):
  K(v) = G_f (K(u_1) + ... + K(u_n)) with G_f its ``l2_gain`` in each argument (triangle inequality:
  an activation s, an addition 1, max pooling sqrt(windows per input)). With the output a segment M_L on
  h: ||grad m_j||_2 <= ||M_L^T c||_2 K(h), else ||c||_2 K(output). On a chain this is
  ||M_L^T c||_2 prod_{l<L} s_l ||M_l||_2. A node without an l2 gain leaves only the first bound.

The bound is the smaller of the two (l2) or the first (linf, l1), times (1 + 1e-6) against float64
rounding. It depends only on (y, j), so it is computed once per certificate as a (K, K) table.
Graphs with a nonlinearity that has no global facts (softmax, LayerNorm, products: transformers) get the
interval Jacobian bound of the bound engine over the whole box X instead (sound: every point of the
threat lies in X), or, when the engine cannot bound them either, a ValueError giving both reasons.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch

from wdrobust.certify.base import Certificate, ShellBound, box_diameter
from wdrobust.certify.bounds import BoundGraph, margin_lipschitz
from wdrobust.certify.bounds.dense import Dense, interval_args
from wdrobust.certify.bounds.interval import Cot
from wdrobust.threat import dual_of, lp_norm

#: Relative margin for floating-point rounding in the float64 products.
ROUNDING = 1e-6


def pair_cotangents(num_classes: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """c[y K + j] = e_j - e_y for every ordered pair (y, j), shape (1, K^2, K)."""
    eye = torch.eye(num_classes, dtype=dtype, device=device)
    return (eye[None, :, :] - eye[:, None, :]).reshape(1, num_classes * num_classes, num_classes)


def l2_constants(dense: Dense) -> dict[Any, float] | None:
    """K(v) >= the l2 Lipschitz constant of x -> v(x) for every value outside a segment's inside (module
    docstring), or None when a node has no l2 gain."""
    graph = dense.graph
    inner = {n for seg in dense.segments.values() for n in seg.nodes[:-1]}
    consts = {graph.input: 1.0}
    for node in graph.nodes:
        if node not in graph.rule_of or node in inner:
            continue
        seg = dense.segments.get(node)
        if seg is not None:
            consts[node] = consts[seg.start] * dense.spectral_bound(seg)
            continue
        gain = dense.bounds.rules[node].l2_gain()
        if gain is None:
            return None
        consts[node] = gain * sum(consts[a] for a in interval_args(graph, node))
    return consts


def pair_lipschitz(
    graph: BoundGraph, input_shape: tuple[int, ...], norm: str, num_classes: int
) -> torch.Tensor:
    """Table L[y, j] >= sup_x ||grad_x (z_j - z_y)||_* over all inputs, shape (K, K), diagonal 0.

    graph: the model's BoundGraph (float64 for certificates); norm: the threat norm (the bound is in its
    dual). ValueError when a nonlinearity has no global facts. Formulas in the module docstring.
    """
    ref = next(iter(graph.gm.parameters()), torch.empty(0, dtype=torch.float64))
    dense = Dense(graph, input_shape, torch.float64, ref.device)
    for rule in dense.bounds.rules.values():
        if rule.nonlinear:
            rule.use_global_slopes()
    c = pair_cotangents(num_classes, torch.float64, ref.device)
    shortcuts = {
        end: (seg.start, lambda cot, seg=seg: dense.transpose(seg, cot))
        for end, seg in dense.segments.items()
    }
    kept: dict[Any, Cot] = {}
    with torch.no_grad():
        g = graph.backward(dense.bounds, Cot(c), kept=kept, shortcuts=shortcuts).magnitude()
    bound = lp_norm(g, dual_of(norm), batch_dims=2)[0]
    if norm == "l2":
        consts = l2_constants(dense)
        if consts is not None:
            last = dense.segments.get(graph.output)
            if last is not None:
                product = lp_norm(kept[last.start].center, "l2", batch_dims=2)[0] * consts[last.start]
            else:
                product = lp_norm(c, "l2", batch_dims=2)[0] * consts[graph.output]
            bound = torch.minimum(bound, product)
    return (bound * (1 + ROUNDING)).reshape(num_classes, num_classes)


class GlobalLipschitz(Certificate):
    """Sound global Lipschitz certificate for any graph the bound engine traces (module docstring).

    One shell: phibar_i(t) = min(cap_i, L_i t) with L_i = max_{j != y_i} L[y_i, j] (ce, margin), and the
    certified radius min_j -m_j(x_i) / L[y_i, j] for zero_one.
    """

    name = "global"
    sound = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tables: dict[tuple[int, ...], torch.Tensor] = {}

    def table(self, input_shape: tuple[int, ...], num_classes: int) -> torch.Tensor:
        """The (K, K) pair table for inputs of shape (n, *input_shape), cached per shape."""
        if input_shape not in self._tables:
            try:
                graph = BoundGraph(
                    copy.deepcopy(self.model).double().requires_grad_(False).eval().to(self.device)
                )
            except ValueError as exc:
                raise ValueError(f"global: the bound engine cannot bound it: {exc}") from None
            try:
                table = pair_lipschitz(graph, input_shape, self.norm, num_classes)
            except ValueError as exc:
                table = self._whole_box_table(graph, input_shape, num_classes, str(exc))
            self._tables[input_shape] = table
        return self._tables[input_shape]

    def _whole_box_table(
        self, graph: BoundGraph, input_shape: tuple[int, ...], num_classes: int, why: str
    ) -> torch.Tensor:
        """For graphs with nonlinearities without global facts (transformers): L[y, j] >= sup over all of
        X = [0,1]^d of ||grad m_j||_* from the bound engine's interval Jacobian over the whole box (one row
        per label; sound because every input and every perturbed point lies in X). A model the engine
        cannot bound either is refused with both reasons."""
        try:
            centre = torch.full((num_classes, *input_shape), 0.5, dtype=torch.float64, device=self.device)
            labels = torch.arange(num_classes, device=self.device)
            diam = box_diameter(self.norm, math.prod(input_shape))
            table = margin_lipschitz(graph, centre, labels, [diam], self.norm, device=self.device)
        except ValueError as exc:
            raise ValueError(f"global: {why}; and the bound engine cannot bound it: {exc}") from None
        self.note = f"whole-box interval Jacobian ({why})"
        return table[:, :, 0] * (1 + ROUNDING)

    def _bound_batch(self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, **batch: Any) -> ShellBound:
        lip = self.table(tuple(x.shape[1:]), z.shape[1])[y][:, :, None]  # (n, K, 1), float64
        knots = self.whole_box_knots(x, lip)
        return ShellBound.from_margins(lip, knots, z.to(lip.dtype), y, self.losses)
