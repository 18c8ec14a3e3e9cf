"""The ``crown`` certificate (sound): output bounds over each ball by linear bound propagation.

For outer radii r_1 < ... < r_M = diam X and every class j != y_i, CROWN (``bounds.propagation``) gives a
linear bound m_j(x) <= A_ijk . x + b_ijk on B(x_i, r_k) cap X and its maximum U_ijk there. The bound over
the whole box (r_M) depends on the label only, so it is computed once per class, on the first batch holding
that label, and not at all for zero_one alone (certified radii never need it). Only a finite order p reads
the growth beyond the largest inner radius r_M-1 (``Certificate.needs_far_growth``); when the run serves
p = inf alone (``orders``), the whole box gets the cheap CROWN-IBP bound (interval pre-activations, no
alpha) instead of ``auto``'s. With the clean margins m_ij:

- staircase: the growth over B(x_i, t), t in (r_k-1, r_k], is at most the growth over B(x_i, r_k), so
  margin: phibar_i(t) <= max_j U_ijk - m_i (m_i = max_j m_ij, the margin loss) and, CE being increasing in
  every margin, CE: phibar_i(t) <= log(1 + sum_j exp U_ijk) - CE_i (U suffix-minimised over k: a bound for a
  larger ball bounds every smaller one);
- chord: for t <= r_k, max over B(x_i, t) of m_j <= m_ij + g_ijk + t ||A_ijk||_* with the relaxation gap
  g_ijk = A_ijk . x_i + b_ijk - m_ij >= 0; both losses of these linear functions of t are convex (a max and a
  log-sum-exp of affine functions), so on (r_k-1, r_k] they lie below their chord;
- the pointwise minimum of the two (and, with ``lipschitz``, of the Lipschitz shells of ``local``, which a
  zero_one-only run skips: certified radii never read them).
The whole-box rows bound their pre-activations with ``auto`` even when ``intermediate`` is ``crown``: there
nearly every neuron is unstable, so full CROWN costs the most and buys the least. The result's note names
the values whose interval boxes ``auto`` kept (``bounds.propagation.Crown.fallback``), for the balls and the
box.
The balls are bounded from the largest radius down, each one's pre-activation boxes intersected with those
of the next larger ball (which contains it): the same bounds or tighter, with fewer neurons left for CROWN
to tighten. A run that serves p = inf alone reads the bounds up to ``reach`` only (``options_for``: the
largest eps); balls and bisection steps beyond it get CROWN-IBP without alpha.
zero_one: the certified radius is the largest grid radius with every U_ijk < 0, extended inside the next
shell by the chord (m_ij + g_ijk + t ||A_ijk||_* < 0) and refined by bisection on "every U_ij(r) < 0".

Arithmetic is float64 on a float64 copy of the model; every bound is widened by FLOAT32_SLACK (1 + max |z_i|)
so that it holds for the float32 network as evaluated (whose logits differ from the float64 ones by
rounding).
"""

from __future__ import annotations

import copy
import itertools
import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import fx, nn

from wdrobust._options import Option, at_least, one_of
from wdrobust._progress import stage
from wdrobust.certify.base import Certificate, ShellBound, box_diameter, shell_knots
from wdrobust.certify.bounds import BoundGraph, margin_lipschitz
from wdrobust.certify.bounds.alpha import MODES as ALPHA_MODES
from wdrobust.certify.bounds.interval import Box
from wdrobust.certify.bounds.lipschitz import margin_cotangents
from wdrobust.certify.bounds.propagation import INTERMEDIATE, check_linear_rules, flat_dot, margin_bounds
from wdrobust.certify.bounds.region import Region
from wdrobust.losses import margins
from wdrobust.primal.curves import Majorant
from wdrobust.threat import dual_of, lp_norm

#: Relative outward slack of every bound against the float32 evaluation of the network.
FLOAT32_SLACK = 1e-5
#: Relative enlargement of the grid radii below the diameter (see ``CrownCertificate.crown_radii``).
RADIUS_NUDGE = 1e-9
#: Coefficient entries (rows x classes x widest value) per chunk of rows.
CHUNK_ENTRIES = 1 << 23
#: Relative tolerance of ``reach`` (the grid radius at eps is eps nudged by RADIUS_NUDGE, in float64).
REACH_TOLERANCE = 1e-6

log = logging.getLogger("wdrobust.certify.crown")


def _take(boxes: dict[fx.Node, Box], rows: torch.Tensor) -> dict[fx.Node, Box]:
    """The boxes (B, *S) of every node on the batch rows (R,) only."""
    return {node: Box(box.lo[rows], box.hi[rows]) for node, box in boxes.items()}


def _unbounded(shape: tuple[int, ...], like: torch.Tensor) -> Box:
    """The box (-inf, inf) of the given shape, in like's dtype and device."""
    inf = torch.full(shape, torch.inf, dtype=like.dtype, device=like.device)
    return Box(-inf, inf.clone())


def _choose(mask: torch.Tensor, a: Box, b: Box) -> Box:
    """Per batch row (mask (B,) bool): a's box (B, *S) where mask holds, b's elsewhere."""
    where = mask.reshape(-1, *([1] * (a.lo.dim() - 1)))
    return Box(torch.where(where, a.lo, b.lo), torch.where(where, a.hi, b.hi))


class CrownCertificate(Certificate):
    """Sound staircase-and-chord growth majorants from CROWN output bounds; see the module docstring.

    Options: intermediate (``ibp``, ``crown`` or ``auto``: how pre-activations are bounded),
    alpha_steps (optimised lower slopes, 0 = plain CROWN), alpha (which slopes, ``bounds.alpha``: "output"
    optimises those of the output pass only, one backward pass a step; "full" also gives every tightened
    pre-activation bound its own slopes and recomputes those bounds each step, as auto_LiRPA's
    CROWN-Optimized: tighter on deep nets, at 3-10x the cost of a step on MLPs), lipschitz (also take
    the minimum with the local Lipschitz shells), subdivide (each gap of the radius grid is split
    geometrically into this many shells, and as many halvings are added below the smallest radius),
    bisection (steps refining the certified radius), shells (size of the default grid,
    ``default_shells``; only without radii).
    """

    name = "crown"
    sound = True
    default_shells = 12
    declared = (
        Option("intermediate", str, "auto", one_of(*INTERMEDIATE), "how pre-activations are bounded"),
        Option("alpha_steps", int, 0, at_least(0), "optimised lower slopes (0 = plain CROWN)"),
        Option(
            "alpha",
            str,
            "output",
            one_of(*ALPHA_MODES),
            "slopes optimised: of the output pass only, or of every tightened bound too (full)",
        ),
        Option("lipschitz", bool, True, None, "also the local Lipschitz shells (the minimum is kept)"),
        Option("subdivide", int, 2, at_least(1), "shells each gap of the radius grid is split into"),
        Option("bisection", int, 6, at_least(0), "steps refining the certified radius"),
        Option("shells", int, None, at_least(1), "size of the default grid (without radii)"),
        Option(
            "reach",
            float,
            None,
            at_least(0),
            "p = inf alone: the largest radius whose bounds are read (beyond it CROWN-IBP; default none)",
        ),
    )

    def __init__(self, model: nn.Module, norm: str = "linf", **options: Any) -> None:
        super().__init__(model, norm, **options)
        if self.shells is not None and self.radii is not None:
            raise ValueError(
                "crown: shells sizes the default radius grid, which is not used when radii are given "
                "(evaluate and options_for give them): drop shells"
            )
        self.shells = self.default_shells if self.shells is None else self.shells
        #: radii beyond which balls get CROWN-IBP bounds: reach, when only p = inf is served (see ``_far``)
        inf_only = self.orders is not None and all(math.isinf(p) for p in self.orders)
        self._tight_up_to = self.reach * (1 + REACH_TOLERANCE) if inf_only and self.reach else math.inf
        self._graphs: dict[str, BoundGraph] = {}
        self._box: dict[int, tuple[torch.Tensor, ...]] = {}
        self._fallback: dict[str, list[str]] = {"balls": [], "whole box": []}  # values auto left to intervals
        self._seconds: dict[str, float] = {}  # seconds per phase of the current batch (logged at its end)
        check_linear_rules(BoundGraph(self.model))  # unsupported operations fail before any work

    def graph(self, precision: str = "float64") -> BoundGraph:
        """The bound graph of the model (float32) or of a float64 copy of it, traced on first use."""
        if precision not in self._graphs:
            model = self.model if precision == "float32" else copy.deepcopy(self.model).double()
            model.requires_grad_(False)
            self._graphs[precision] = BoundGraph(model.eval())
        return self._graphs[precision]

    @classmethod
    def options_for(cls, norm: str, eps: float, d: int) -> dict[str, Any]:
        """The shell radii of ``Certificate.options_for`` and reach = eps (when eps > 0): a run that serves
        p = inf alone reads the bounds up to eps only."""
        return {**super().options_for(norm, eps, d), **({"reach": float(eps)} if eps > 0 else {})}

    def crown_radii(self, d: int) -> np.ndarray:
        """The radius grid (M,): the shell radii (``shell_radii``: given, or default with ``shells``), each
        gap split geometrically into ``subdivide`` pieces, ``subdivide`` halvings below the smallest, all
        but the last (diam) raised by the factor 1 + RADIUS_NUDGE.

        The nudge makes a ball verified at r_k certify more than the closed ball of radius r_k: the
        zero_one knapsack at p = inf counts a certified radius r_i <= eps as possibly flipped, and a
        radius given as eps must certify the closed eps ball; a bound over the larger ball stays sound."""
        base = self.shell_radii(d)
        if self.subdivide > 1 and base.size > 1:
            fine = [np.geomspace(a, b, self.subdivide + 1)[:-1] for a, b in itertools.pairwise(base)]
            base = np.concatenate([*fine, base[-1:]])
        below = base[0] * 0.5 ** np.arange(self.subdivide, 0, -1)
        grid = np.concatenate([below, base])
        keep = np.concatenate([[True], np.diff(grid.astype(np.float32)) > 0])  # distinct as float32 too
        grid = grid[keep]
        grid[:-1] *= 1 + RADIUS_NUDGE
        return grid

    @contextmanager
    def _phase(self, name: str) -> Iterator[None]:
        """Add the seconds of the block to the phase ``name`` of the current batch (shown as a progress
        stage "crown name")."""
        start = time.perf_counter()
        try:
            with stage(f"crown {name}"):
                yield
        finally:
            self._seconds[name] = self._seconds.get(name, 0.0) + time.perf_counter() - start

    # -- the linear bounds ---------------------------------------------------------------------------
    def _far(self, r: torch.Tensor) -> torch.Tensor:
        """(R,) bool: the radii r (R,) beyond ``reach`` on a run that serves p = inf alone; their balls get
        CROWN-IBP bounds without alpha (no figure of such a run reads them; certified radii beyond reach
        stay sound, only looser)."""
        return r > self._tight_up_to

    def _bounds(
        self,
        x: torch.Tensor,
        r: torch.Tensor,
        y: torch.Tensor,
        k: int,
        known: dict[fx.Node, Box] | None = None,
        tightened: dict[fx.Node, Box] | None = None,
        stop: float | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """For rows (x (R, *S) float64, r (R,), y (R,)): U, A . x_row + b and ||A||_*, each (R, K-1) over
        the classes j != y in increasing order, in row chunks (``_far`` rows with CROWN-IBP). known: sound
        pre-activation boxes (R, *S) on the rows' balls, e.g. those of balls containing them; tightened:
        receives the rows' final pre-activation boxes (R, *S) (``margin_bounds``);
        stop: alpha's early stop."""
        graph = self.graph()
        widest = max(v.numel() for v in graph.evaluate(x[:1]).values() if isinstance(v, torch.Tensor))
        step = max(1, CHUNK_ENTRIES // ((k - 1) * widest))
        out = [x.new_empty((x.shape[0], k - 1)) for _ in range(3)]
        far = self._far(r)
        chunks = [rows for g in (~far, far) for rows in g.nonzero().flatten().split(step) if rows.numel()]
        for rows in chunks:
            tight = {} if tightened is not None else None
            _, c = margin_cotangents(y[rows], k)
            upper, a, b = margin_bounds(
                graph,
                Region.ball(x[rows], r[rows], self.norm),
                c.to(x.dtype),
                intermediate="ibp" if far[rows[0]] else self.intermediate,
                alpha_steps=0 if far[rows[0]] else self.alpha_steps,
                alpha=self.alpha,
                alpha_stop=stop,
                fallback=self._fallback["balls"],
                known=None if known is None else _take(known, rows),
                tightened=tight,
            )
            out[0][rows], out[1][rows] = upper, flat_dot(a, x[rows]) + b
            out[2][rows] = lp_norm(a, dual_of(self.norm), batch_dims=2)
            for node, box in (tight or {}).items():
                if node not in tightened:
                    tightened[node] = _unbounded((x.shape[0], *box.lo.shape[1:]), box.lo)
                tightened[node].lo[rows], tightened[node].hi[rows] = box.lo, box.hi
        return out[0], out[1], out[2]

    def _balls(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        k: int,
        inner: torch.Tensor,
        last: torch.Tensor,
        slack: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[fx.Node, Box]]:
        """U, A . x + b and ||A||_*, each (n (M-1), K-1) radius-major, of the n samples x (n, *S) on the
        inner radii (M-1,), from the largest ball down: each ball's pre-activation boxes are intersected with
        those of the next larger ball, which contains it (bounds as tight or tighter, fewer neurons left for
        CROWN to tighten). Also the pre-activation boxes (n, *S) of each sample's smallest unverified ball,
        the shell bisection refines (infinite where none): a ball is unverified while the suffix minimum
        over the radii of some class's bound plus slack (n, 1) is >= 0, the whole box's last (n, K-1)
        (slack included) ending the suffix, as in ``_bound_batch``."""
        n = x.shape[0]
        parts: list[tuple[torch.Tensor, ...]] = []
        known: dict[fx.Node, Box] | None = None
        failed: dict[fx.Node, Box] = {}
        for r in reversed(inner.tolist()):
            tight: dict[fx.Node, Box] = {}
            upper, at_x, norm_a = self._bounds(x, x.new_full((n,), r), y, k, known, tight)
            last = torch.minimum(last, upper + slack)
            open_rows = ~(last < 0).all(dim=1)
            for node, box in tight.items():
                keep = failed.get(node, _unbounded(box.lo.shape, box.lo))
                failed[node] = _choose(open_rows, box, keep)
            known = tight
            parts.append((upper, at_x, norm_a))
        upper, at_x, norm_a = (torch.cat(p[::-1]) for p in zip(*parts, strict=True))
        return upper, at_x, norm_a, failed

    def _bound_batch(self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, **batch: Any) -> ShellBound:
        self._seconds = {}
        n, d = x.shape[0], x[0].numel()
        radii = self.crown_radii(d)
        m_sh = radii.size
        x64 = x.to(torch.float64)
        z64 = self.graph().gm(x64)
        k = z.shape[1]
        slack = (FLOAT32_SLACK * (1 + z64.abs().amax(dim=1)))[:, None, None]  # (n, 1, 1)
        inner = torch.as_tensor(radii[:-1], dtype=torch.float64, device=x.device)
        box_cls, _ = margin_cotangents(torch.arange(k, device=x.device), k)
        majorants_read = set(self.losses) != {"zero_one"}  # radii never read the box or the local shells
        if not majorants_read:  # the whole box stays unverified
            box_u = box_at_x = box_norm = torch.full((n, k - 1), torch.inf, dtype=torch.float64)
        else:
            with self._phase("whole box"):
                box_u, a_y, b_y = self._whole_box(y, k, x64)
            box_at_x = flat_dot(a_y, x64) + b_y
            box_norm = lp_norm(a_y, dual_of(self.norm), batch_dims=2)
        upper = at_x = norm_a = None  # radius-major ball rows (k, i)
        failed: dict[fx.Node, Box] = {}
        if m_sh > 1:
            with self._phase("balls"):
                upper, at_x, norm_a, failed = self._balls(
                    x64, y, k, inner, box_u + slack[:, :, 0], slack[:, 0]
                )

        def per_sample(rows: torch.Tensor | None, last: torch.Tensor) -> torch.Tensor:
            """(n, K-1, M) from the ball rows (n (M-1), K-1) and the box values (n, K-1)."""
            head = [] if rows is None else [rows.reshape(m_sh - 1, n, k - 1).permute(1, 2, 0)]
            return torch.cat([*head, last[:, :, None]], dim=2)

        m_all = margins(z64, y)
        m_other = m_all.gather(1, box_cls[y])  # (n, K-1) float64 clean margins of the classes j != y
        u = per_sample(upper, box_u) + slack
        u = torch.flip(torch.cummin(torch.flip(u, [2]), dim=2).values, [2])  # suffix minimum over radii
        gap = (per_sample(at_x, box_at_x) - m_other[:, :, None]).clamp(min=0) + slack
        lip = per_sample(norm_a, box_norm)
        knots = shell_knots(radii, x64)  # float64: a staircase must jump exactly at the radii
        lo = torch.cat([knots.new_zeros(n, 1), knots[:, :-1]], dim=1)
        clean_m = margins(z, y).to(torch.float64)
        clean_m_other = clean_m.gather(1, box_cls[y])
        reach = lambda t: m_other[:, :, None] + gap + t[:, None, :] * lip  # noqa: E731
        growth = {
            "margin": lambda v: v.amax(dim=1) - clean_m_other.amax(dim=1, keepdim=True),
            "ce": lambda v: _log1p_sum_exp(v) - _log1p_sum_exp(clean_m_other[:, :, None]),
        }
        majorants: dict[str, Majorant] = {}
        local = None
        if self.lipschitz and majorants_read:
            with self._phase("local"):
                local = self._local(x, y, z, knots)
        for loss in self.losses:
            if loss == "zero_one":
                continue
            f = growth[loss]
            stair = _np(f(u))
            chord = Majorant.from_pieces(_np(knots), _np(f(reach(lo))), _np(f(reach(knots))))
            major = Majorant.from_pieces(_np(knots), stair, stair).minimum(chord)
            if local is not None:
                major = major.minimum(Majorant(_np(local.knots), _np(local.slopes[loss])))
            majorants[loss] = major
        radius = None
        if "zero_one" in self.losses:
            correct = z.argmax(dim=1) == y
            with self._phase("radius"):
                radius = self._certified_radius(
                    x64, y, correct, knots, u, reach(knots.new_zeros(n, m_sh)), lip, slack[:, 0, 0], failed
                )
        lip0 = local.lipschitz if local is not None else lip[:, :, 0].amax(dim=1)
        kept = [f"{where}: {', '.join(names)}" for where, names in self._fallback.items() if names]
        self.note = f"auto kept interval bounds of {'; '.join(kept)}" if kept else ""
        phases = ", ".join(f"{name} {sec:.2f} s" for name, sec in self._seconds.items())
        log.info("crown: %d samples, %d radii: %s", n, m_sh, phases)
        bound = ShellBound(knots, {}, lip0, radius)
        bound.majorants = majorants
        return bound

    def _whole_box(
        self, y: torch.Tensor, k: int, like: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(U (n, K-1), A (n, K-1, *S), bias (n, K-1)) of the margins j != y_i (increasing j) over the whole
        box for the labels y (n,) of K classes, samples shaped like ``like`` (n, *S) float64. Per label,
        computed on the first batch that holds it and kept (it depends on the model only): a run never pays
        for labels it does not see, a zero_one-only run (radii) never computes it, and a run that never
        reads the growth there (p = inf only) gets CROWN-IBP without alpha, one backward pass per class."""
        missing = sorted({int(v) for v in y.tolist()} - self._box.keys())
        if missing:
            labels = torch.tensor(missing, device=like.device)
            shape = (len(missing), *like.shape[1:])
            centre = torch.full(shape, 0.5, dtype=torch.float64, device=like.device)
            diam = torch.full(
                (len(missing),),
                box_diameter(self.norm, like[0].numel()),
                dtype=torch.float64,
                device=like.device,
            )
            _, c = margin_cotangents(labels, k)
            tight = self.intermediate != "ibp" and self.needs_far_growth
            upper, a, b = margin_bounds(
                self.graph(),
                Region.ball(centre, diam, self.norm),
                c.to(torch.float64),
                intermediate="auto" if tight else "ibp",
                alpha_steps=self.alpha_steps if self.needs_far_growth else 0,
                alpha=self.alpha,
                fallback=self._fallback["whole box"],
            )
            self._box.update({cls: (upper[i], a[i], b[i]) for i, cls in enumerate(missing)})
        parts = [self._box[int(v)] for v in y.tolist()]
        return tuple(torch.stack(p) for p in zip(*parts, strict=True))  # type: ignore[return-value]

    def _local(self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor, knots: torch.Tensor) -> ShellBound:
        """The Lipschitz shells of ``local`` on the same knots (with CROWN boxes on the float64 graph for
        models with relaxed rules, as ``local``'s boxes=auto)."""
        if any(rule.compounding for rule in self.graph().rule_of.values()):
            lip = margin_lipschitz(
                self.graph(),
                x.double(),
                y,
                knots[0],
                self.norm,
                device=self.device,
                intermediate="auto",
            )
        else:
            lip = margin_lipschitz(self.graph("float32"), x, y, knots[0], self.norm, device=self.device)
        losses = [loss for loss in self.losses if loss != "zero_one"]
        return ShellBound.from_margins(lip, knots, z, y, losses)

    def _certified_radius(
        self,
        x64: torch.Tensor,
        y: torch.Tensor,
        correct: torch.Tensor,
        knots: torch.Tensor,
        u: torch.Tensor,
        at_centre: torch.Tensor,
        lip: torch.Tensor,
        slack: torch.Tensor,
        failed: dict[fx.Node, Box],
    ) -> torch.Tensor:
        """(n,) certified radii (0 where misclassified); see the module docstring.

        u (n, K-1, M): margin bounds over the balls (slack included); at_centre (n, K-1, M): m_ij + g_ijk
        (slack included); lip (n, K-1, M): ||A_ijk||_*; slack (n,); failed: each sample's pre-activation
        boxes (n, *S) on its first unverified ball (``_balls``), which contains every ball bisection tries;
        each step's boxes replace them on the rows it leaves unverified.
        """
        m = u.shape[2]
        safe = (u < 0).all(dim=1)  # (n, M): the ball of radius r_k is verified
        first_bad = torch.where(safe.all(dim=1), m, (~safe).to(torch.int64).argmax(dim=1))
        below = knots.gather(1, (first_bad - 1).clamp(min=0)[:, None])[:, 0]
        radius = torch.where(first_bad > 0, below, torch.zeros_like(below)).to(torch.float64)
        rows = (correct & (first_bad < m)).nonzero().flatten()
        if rows.numel():
            kk = first_bad[rows]
            top = knots[rows, kk].to(torch.float64)
            start = at_centre[rows, :, kk]  # (R, K-1) m_j + g_j at the centre, inside the first open shell
            t_chord = torch.where(
                start < 0, -start / lip[rows, :, kk].clamp(min=1e-300), torch.zeros_like(start)
            )
            lo = torch.maximum(radius[rows], torch.minimum(t_chord.amin(dim=1), top))
            hi = top
            k = u.shape[1] + 1
            # each row's pre-activation boxes on the ball of radius hi, which contains every later ball
            known = _take(failed, rows)
            for _ in range(self.bisection):
                mid = (lo + hi) / 2
                tight: dict[fx.Node, Box] = {}
                stop = -float(slack[rows].max())  # only the signs matter here
                upper = self._bounds(x64[rows], mid, y[rows], k, known, tight, stop)[0]
                ok = (upper + slack[rows, None] < 0).all(dim=1)
                lo = torch.where(ok, mid, lo)
                hi = torch.where(ok, hi, mid)
                for node, box in tight.items():
                    known[node] = _choose(ok, known[node], box)
            radius[rows] = lo
        return torch.where(correct, radius, torch.zeros_like(radius))


def _log1p_sum_exp(v: torch.Tensor) -> torch.Tensor:
    """log(1 + sum over dim 1 of exp v), stably; v (n, C, ...) -> (n, ...)."""
    zero = torch.zeros_like(v[:, :1])
    return torch.logsumexp(torch.cat([zero, v], dim=1), dim=1)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()
