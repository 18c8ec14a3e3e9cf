"""The paper's CIFAR-10 experiment on real networks and test images: regenerates docs/paper.md.

    PYTHONPATH=src .venv/bin/python scripts/paper_table.py [--n 20] [--networks cifar_base_kw,resnet18]
        [--eps own,2/255,8/255] [--autoattack-eps own] [--crown-options intermediate=ibp] [--crown-cap 60]
        [--shared ../shared] [--out docs/paper.md]
    PYTHONPATH=src .venv/bin/python scripts/paper_table.py --assemble   # OUT from the caches only

Networks: the CIFAR-10 ONNX networks of the VNN-COMP sets in SHARED/benchmarks/vnncomp (oval21's three
Kolter-Wong CNNs, cifar10_resnet's adversarially trained resnet_2b, the 2023 PGD-trained ViT), each on the
test images recovered from its own properties (``vnnlib_export.export``: image, label and eps of every
property, the benchmark's normalisation undone; the network is wrapped in ``nets.normalized`` so every
model takes [0, 1] pixels), and pyautoattack's standard-trained ResNet-18 (``examples/model_test.pt``) on
the cifar10_resnet images. Without SHARED the script says so and exits 0 (nothing written).

Per network, l_inf, eps in {the benchmark's own (the median of its properties' eps), 2/255, 8/255}, on
the first n images:
- p = inf: clean accuracy; robust accuracy, passes and seconds per image of autoattack (standard), a3,
  apgd, pgd, wda, a3-wda;
- p = 1, 2: distributional robust accuracy (the zero_one knapsack, ``pipeline.bounds.summarize``) of
  w-pgd, wda, wda++, of the point-wise attacks' points (their best mixture) and of the best attack (the
  primal solver over every candidate of every attack run on the network, the point-wise runs at the
  kappa radii included), next to the paper's kappa-mixture (1 - 1/kappa) clean + (1/kappa) acc_inf(
  kappa^(1/p) eps), kappa in {1, 2, 4}, acc_inf the best point-wise accuracy (wda and apgd at that radius);
- certificates crown (sound), global (sound) and first-order (estimate): certified distributional accuracy
  1 - UB(zero_one) for every (eps, p) and seconds per image; the band (attacked - certified). They are run
  for zero_one alone (the tables need nothing else; crown then never bounds the whole box). crown takes
  --crown-options and is first run on one image: stopped after --crown-cap seconds, it is not run at all.
Each network's figures go to OUT's folder paper/cache/<network>.json as soon as it finishes; OUT is then
assembled from every cached network (so networks run separately, in any order, merge into one OUT;
--assemble rebuilds OUT from the caches without computing). Writes OUT (markdown tables, the time of each
network's run), paper/<network>.png (the sandwich: attacked and certified accuracy against eps per p) and
paper/records/<network>.json (RobustBench-style records).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import math
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from vnnlib_export import export

from wdrobust import nets
from wdrobust.attacks import ATTACKS, AttackResult
from wdrobust.attacks.base import union
from wdrobust.certify import CERTIFICATES, CertificateResult
from wdrobust.certify.base import distinct_radii
from wdrobust.pipeline.bounds import summarize
from wdrobust.report.robustbench import MODEL_INFO_SCHEMA, THREAT_NAMES
from wdrobust.threat import ThreatModel

POINTWISE = ("autoattack", "a3", "apgd", "pgd", "wda", "a3-wda")
DISTRIBUTIONAL = ("w-pgd", "wda", "wda++")
#: point-wise attacks run at the kappa radii (the kappa-mixture's acc_inf).
KAPPA_ATTACKS = ("apgd", "wda")
KAPPAS = (1, 2, 4)
P_FINITE = (1.0, 2.0)
CERTS = ("crown", "global", "first-order")
OVAL = ((0.485, 0.456, 0.406), (0.225, 0.225, 0.225))
CIFAR = (0.4914, 0.4822, 0.4465)


@dataclass(frozen=True)
class Network:
    """A CIFAR-10 network: its file (relative to SHARED, or absolute), the benchmark whose properties give
    the images (and their normalisation mean/std), the normalisation the network expects (None: it takes
    [0, 1] pixels), the default number of images (``--n`` caps it) and what it is."""

    name: str
    model: str
    bench: str
    box_norm: tuple[Sequence[float], Sequence[float]]
    net_norm: tuple[Sequence[float], Sequence[float]] | None
    n: int
    what: str
    arch: str | None = None


def _resnet18_file() -> str:
    """pyautoattack's example ResNet-18 (absolute path), or '' when the package is absent."""
    try:
        import pyautoattack
    except ImportError:
        return ""
    return str(Path(pyautoattack.__file__).parent / "examples" / "model_test.pt")


RESNET_BOX = (CIFAR, (0.2471, 0.2435, 0.2616))
NETWORKS = (
    Network(
        "cifar_base_kw",
        "2021_oval21/onnx/cifar_base_kw.onnx.gz",
        "2021_oval21",
        OVAL,
        OVAL,
        10,
        "Kolter-Wong CNN (oval21)",
    ),
    Network(
        "cifar_wide_kw",
        "2021_oval21/onnx/cifar_wide_kw.onnx.gz",
        "2021_oval21",
        OVAL,
        OVAL,
        10,
        "Kolter-Wong wide CNN (oval21)",
    ),
    Network(
        "cifar_deep_kw",
        "2021_oval21/onnx/cifar_deep_kw.onnx.gz",
        "2021_oval21",
        OVAL,
        OVAL,
        10,
        "Kolter-Wong deep CNN (oval21)",
    ),
    Network(
        "resnet_2b",
        "2021_cifar10_resnet/onnx/resnet_2b.onnx.gz",
        "2021_cifar10_resnet",
        RESNET_BOX,
        RESNET_BOX,
        20,
        "adversarially trained ResNet (cifar10_resnet)",
    ),
    Network(
        "vit_pgd_2_3_16",
        "2023_vit/onnx/pgd_2_3_16.onnx.gz",
        "2023_vit",
        (CIFAR, (0.2023, 0.1994, 0.2010)),
        (CIFAR, (0.2023, 0.1994, 0.2010)),
        10,
        "PGD-trained vision transformer (2023_vit)",
    ),
    Network(
        "resnet18",
        "",
        "2021_cifar10_resnet",
        RESNET_BOX,
        None,
        10,
        "standard-trained ResNet-18 (pyautoattack's model_test.pt)",
        arch="resnet18",
    ),
)


@dataclass
class Data:
    """The images of one network: x (N, 3, 32, 32) in [0, 1], y (N,), the benchmark's own eps."""

    x: torch.Tensor
    y: torch.Tensor
    own_eps: float


def images(shared: Path, net: Network, cache: Path, n: int) -> Data:
    """The first n images recovered from the properties of net.bench (exported once into cache)."""
    npz = cache / f"{net.bench}.npz"
    if not npz.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        mean, std = net.box_norm
        export(
            [str(shared / "benchmarks/vnncomp" / net.bench / "instances.csv")],
            (3, 32, 32),
            list(mean),
            list(std),
            255,
            npz,
        )
    with np.load(npz) as f:
        x = torch.tensor(f["x_test"][:n], dtype=torch.float32) / 255
        own = round(float(np.median(f["eps"])) * 255, 1) / 255  # the grid k / 255 the benchmarks chose
        return Data(x, torch.tensor(f["y_test"][:n]), own)


def load_network(shared: Path, net: Network) -> torch.nn.Module:
    """The network as a model of [0, 1] pixels (the normalisation put in front when it expects one)."""
    path = Path(net.model) if net.arch else shared / "benchmarks/vnncomp" / net.model
    model = nets.load(path, device="cpu", arch=net.arch) if net.arch else nets.load(path, device="cpu")
    return model if net.net_norm is None else nets.normalized(model, *net.net_norm).eval()


def eps_grid(spec: str, own: float) -> list[float]:
    """The distinct radii of a spec like "own,2/255,8/255", ascending."""
    out = []
    for item in (s.strip() for s in spec.split(",") if s.strip()):
        num, _, den = item.partition("/")
        value = own if item == "own" else float(num) / (float(den) if den else 1.0)
        if not any(math.isclose(value, e, rel_tol=1e-3) for e in out):
            out.append(value)
    return sorted(out)


@dataclass
class Cell:
    """One attack run's figures: accuracy, passes (forward + backward) and seconds per image."""

    accuracy: float
    passes: float
    seconds: float

    @classmethod
    def of(cls, result: AttackResult, accuracy: float) -> Cell:
        n = result.n
        return cls(accuracy, (result.forward_passes + result.backward_passes) / n, result.seconds / n)


@dataclass
class NetworkResult:
    """Everything measured on one network (keys: eps, p; p = inf for the point-wise table)."""

    net: Network
    n: int
    clean: float
    eps: list[float]
    pointwise: dict[tuple[float, str], Cell] = field(default_factory=dict)
    distributional: dict[tuple[float, float, str], float] = field(default_factory=dict)
    certified: dict[tuple[float, float, str], float] = field(default_factory=dict)
    cert_seconds: dict[str, float] = field(default_factory=dict)
    cert_skipped: dict[str, str] = field(default_factory=dict)
    attack_skipped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    command: str = ""

    def to_json(self) -> dict:
        """The cache record: every field, the keyed tables as lists of [*key, value]."""
        table = lambda d: [[*k, v] for k, v in d.items()]  # noqa: E731
        return {
            "network": self.net.name,
            "n": self.n,
            "clean": self.clean,
            "eps": self.eps,
            "pointwise": [[e, a, dataclasses.asdict(c)] for (e, a), c in self.pointwise.items()],
            "distributional": table(self.distributional),
            "certified": table(self.certified),
            **{k: getattr(self, k) for k in ("cert_seconds", "cert_skipped", "attack_skipped")},
            "seconds": self.seconds,
            "command": self.command,
        }

    @classmethod
    def from_json(cls, record: dict, net: Network) -> NetworkResult:
        """The inverse of ``to_json`` (p = inf is stored as JSON's Infinity)."""
        table = lambda rows: {tuple(r[:-1]): r[-1] for r in rows}  # noqa: E731
        return cls(
            net,
            record["n"],
            record["clean"],
            record["eps"],
            {(e, a): Cell(**c) for e, a, c in record["pointwise"]},
            table(record["distributional"]),
            table(record["certified"]),
            *(record[k] for k in ("cert_seconds", "cert_skipped", "attack_skipped", "seconds", "command")),
        )


def _as(result: AttackResult, threat: ThreatModel) -> AttackResult:
    """The same candidates under another threat (candidate points are valid for every threat)."""
    return dataclasses.replace(result, threat=threat)


class Runner:
    """Runs and caches attacks on one network's images: key (attack, eps, p). Every figure of the tables is
    of zero_one, so the attacks record it alone: at p = inf APGD then retires a sample once it is broken
    (with CE recorded every sample runs all its steps: 202 passes per image)."""

    def __init__(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, log: Callable[[str], None]):
        self.model, self.x, self.y, self.log = model, x, y, log
        self.cache: dict[tuple[str, float, float], AttackResult] = {}

    def attack(self, name: str, eps: float, p: float) -> AttackResult:
        key = (name, eps, p)
        if key not in self.cache:
            threat = ThreatModel("linf", eps, p)
            attack = ATTACKS[name](self.model, threat, losses=("zero_one",), seed=0, batch_size=len(self.y))
            r = attack.run(self.x, self.y)
            self.log(
                f"  {name} eps {eps * 255:.3g}/255 p {p:g}: robust acc {r.robust_accuracy():.3f} "
                f"passes/img {(r.forward_passes + r.backward_passes) / r.n:.0f} s/img {r.seconds / r.n:.2f}"
            )
            self.cache[key] = r
        return self.cache[key]

    def best(self, threat: ThreatModel, keys: Sequence[tuple[str, float, float]] | None = None) -> float:
        """Distributional accuracy of the primal solver over the candidates of the cached runs ``keys``
        (default: all of them) under threat."""
        chosen = [self.cache[k] for k in (keys if keys is not None else list(self.cache))]
        return summarize(union([_as(r, threat) for r in chosen]), threat).distributional_accuracy


def kappa_mixture(clean: float, pointwise_acc: float, kappa: float) -> float:
    """The paper's v1 mixture: (1 - 1/kappa) clean + (1/kappa) acc_inf(kappa^(1/p) eps), a distribution of
    the W_p ball (a 1/kappa share of every sample moved kappa^(1/p) eps: cost eps^p)."""
    return (1 - 1 / kappa) * clean + pointwise_acc / kappa


def attack_network(res: NetworkResult, run: Runner, aa_eps: Sequence[float]) -> None:
    """Fill res.pointwise and res.distributional (see the module docstring); the reference AutoAttack runs
    at the radii aa_eps only (none: not at all)."""
    for eps in res.eps:
        for name in POINTWISE:
            if name == "autoattack" and not any(math.isclose(eps, e, rel_tol=1e-3) for e in aa_eps):
                where = ", ".join(map(_e, aa_eps))
                res.attack_skipped[name] = (
                    f"run at {where} only (--autoattack-eps)" if where else "--autoattack"
                )
                continue
            try:
                r = run.attack(name, eps, math.inf)
            except ValueError as exc:  # pyautoattack absent
                res.attack_skipped[name] = str(exc)
                continue
            res.pointwise[(eps, name)] = Cell.of(r, r.robust_accuracy(eps))
    pointwise_keys = [k for k in run.cache if k[2] == math.inf]
    for eps in res.eps:
        for p in P_FINITE:
            threat = ThreatModel("linf", eps, p)
            for name in DISTRIBUTIONAL:
                res.distributional[(eps, p, name)] = summarize(
                    _as(run.attack(name, eps, p), threat)
                ).distributional_accuracy
            res.distributional[(eps, p, "point-wise mix")] = run.best(
                threat, [k for k in pointwise_keys if k[1] == eps]
            )
            for kappa in KAPPAS:
                radius = kappa ** (1 / p) * eps
                keys = [(a, radius, math.inf) for a in KAPPA_ATTACKS]
                for a, r, q in keys:
                    run.attack(a, r, q)
                keys += [k for k in pointwise_keys if k[1] == eps] if kappa == 1 else []
                ball = ThreatModel("linf", radius)
                acc = union([_as(run.cache[k], ball) for k in keys]).robust_accuracy(radius)
                res.distributional[(eps, p, f"kappa {kappa}")] = kappa_mixture(res.clean, acc, kappa)
    for eps in res.eps:
        for p in P_FINITE:
            res.distributional[(eps, p, "best")] = run.best(ThreatModel("linf", eps, p))
        res.distributional[(eps, math.inf, "best")] = run.best(
            ThreatModel("linf", eps, math.inf), [k for k in run.cache if k[2] == math.inf and k[1] == eps]
        )


def parse_options(spec: str) -> dict[str, object]:
    """Options like "intermediate=ibp,bisection=3" as a dict (ints and booleans converted)."""
    out: dict[str, object] = {}
    for item in (s.strip() for s in spec.split(",") if s.strip()):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"certificate option {item!r} is not key=value")
        low = value.lower()
        out[key] = low == "true" if low in ("true", "false") else int(value) if value.isdigit() else value
    return out


def within(seconds: float, work: Callable[[], object]) -> bool:
    """Run work, interrupted (False) once it has run ``seconds`` (SIGALRM: the main thread, Unix)."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        work()
        return True
    except TimeoutError:
        return False
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def certify_network(
    res: NetworkResult,
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    skip: dict[str, str],
    log: Callable[[str], None],
    crown_options: dict[str, object] | None = None,
    crown_cap: float = math.inf,
) -> None:
    """Fill res.certified: 1 - UB(zero_one) of each certificate at every (eps, p). crown takes
    crown_options and is run on the first image first: stopped after crown_cap seconds, it is not run."""
    d = x[0].numel()
    for name in CERTS:
        if name in skip:
            res.cert_skipped[name] = skip[name]
            continue
        cls = CERTIFICATES[name]
        radii = distinct_radii(np.concatenate([cls.options_for("linf", e, d)["radii"] for e in res.eps]))
        extra = (crown_options or {}) if name == "crown" else {}
        start = time.perf_counter()
        try:
            certificate = cls(
                model, "linf", losses=("zero_one",), radii=radii, device="cpu", batch_size=len(y), **extra
            )
            if name == "crown" and math.isfinite(crown_cap):
                if not within(crown_cap, functools.partial(certificate.run, x[:1], y[:1])):
                    res.cert_skipped[name] = f"the first image took over --crown-cap {crown_cap:g} s"
                    continue
                log(f"  crown {extra}: {time.perf_counter() - start:.1f} s on the first image")
                start = time.perf_counter()
            cert: CertificateResult = certificate.run(x, y)
        except ValueError as exc:  # an architecture the certificate does not support
            res.cert_skipped[name] = str(exc).splitlines()[0]
            continue
        res.cert_seconds[name] = (time.perf_counter() - start) / len(y)
        log(f"  {name}: {res.cert_seconds[name]:.2f} s/img (sound: {cert.sound})")
        for eps in res.eps:
            for p in (*P_FINITE, math.inf):
                risk = cert.upper_bound("zero_one", ThreatModel("linf", eps, p)).risk
                res.certified[(eps, p, name)] = 1.0 - risk


def evaluate_network(
    shared: Path, net: Network, args: argparse.Namespace, log: Callable[[str], None]
) -> NetworkResult:
    """All tables of one network (see the module docstring)."""
    model = load_network(shared, net)
    data = images(shared, net, args.cache, min(net.n, args.n) if args.n else net.n)
    with torch.no_grad():
        clean = float((model(data.x).argmax(1) == data.y).float().mean())
    res = NetworkResult(net, len(data.y), clean, eps_grid(args.eps, data.own_eps))
    log(f"{net.name}: {res.n} images, clean {clean:.3f}, eps {[round(e * 255, 2) for e in res.eps]}/255")
    with_aa = args.autoattack == "all" or net.name in args.autoattack.split(",")
    aa_eps = eps_grid(args.autoattack_eps or args.eps, data.own_eps) if with_aa else []
    attack_network(res, Runner(model, data.x, data.y, log), aa_eps)
    skip = {c: "--skip-certificates" for c in CERTS if c in args.skip_certificates.split(",")}
    certify_network(res, model, data.x, data.y, skip, log, parse_options(args.crown_options), args.crown_cap)
    return res


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def _e(eps: float) -> str:
    return f"{eps * 255:.3g}/255"


def pointwise_table(res: NetworkResult) -> list[str]:
    """p = inf: robust accuracy (%), passes (forward + backward) and seconds per image per attack."""
    lines = [
        "| attack | " + " | ".join(f"{_e(e)}: acc % / passes / s per img" for e in res.eps) + " |",
        "|---|" + "---|" * len(res.eps),
    ]
    for name in POINTWISE:
        cells = [res.pointwise.get((e, name)) for e in res.eps]
        if all(c is None for c in cells):
            continue
        lines.append(
            f"| {name} | "
            + " | ".join(
                "-" if c is None else f"{_pct(c.accuracy)} / {c.passes:.0f} / {c.seconds:.2f}" for c in cells
            )
            + " |"
        )
    return lines


DIST_COLUMNS = (*DISTRIBUTIONAL, "point-wise mix", *(f"kappa {k}" for k in KAPPAS), "best")


def distributional_table(res: NetworkResult) -> list[str]:
    """p = 1, 2: distributional accuracy (%) per attack, the kappa-mixtures and the best attack; the last
    column is how far the best attack is below the best kappa-mixture (points)."""
    lines = [
        "| eps | p | " + " | ".join(DIST_COLUMNS) + " | best kappa-mix - best |",
        "|---|---|" + "---|" * (len(DIST_COLUMNS) + 1),
    ]
    for e in res.eps:
        for p in P_FINITE:
            row = [res.distributional[(e, p, c)] for c in DIST_COLUMNS]
            mix = min(res.distributional[(e, p, f"kappa {k}")] for k in KAPPAS)
            lines.append(
                f"| {_e(e)} | {p:g} | " + " | ".join(map(_pct, row)) + f" | {100 * (mix - row[-1]):.1f} |"
            )
    return lines


def certificate_table(res: NetworkResult) -> list[str]:
    """Certified accuracy (%) of each certificate, the attacked one, and the band attacked - crown."""
    names = [c for c in CERTS if c not in res.cert_skipped]
    lines = [
        "| eps | p | attacked (best) | "
        + " | ".join(f"{c} ({'estimate' if c == 'first-order' else 'sound'})" for c in names)
        + " | band (points) |",
        "|---|---|---|" + "---|" * (len(names) + 1),
    ]
    for e in res.eps:
        for p in (*P_FINITE, math.inf):
            best = res.distributional[(e, p, "best")]
            sound = [res.certified[(e, p, c)] for c in names if c != "first-order"]
            band = f"{100 * (best - max(sound)):.1f}" if sound else "-"
            lines.append(
                f"| {_e(e)} | {p:g} | {_pct(best)} | "
                + " | ".join(_pct(res.certified[(e, p, c)]) for c in names)
                + f" | {band} |"
            )
    lines.append("")
    lines.append("Seconds per image: " + ", ".join(f"{c} {s:.2f}" for c, s in res.cert_seconds.items()) + ".")
    lines += [f"Not run: {c}: {why}." for c, why in res.cert_skipped.items()]
    return lines


@dataclass(frozen=True)
class Claim:
    """One of the issue's claims checked at one (eps, p): its name, whether it holds, the figures."""

    name: str
    holds: bool
    text: str


CLAIMS = (
    "A3-WDA <= AA (p = inf)",
    "A3-WDA time <= AA time / 10",
    "WDA within 1 point of AA",
    "best <= W-PGD (p = 1, 2)",
    "best <= every kappa-mixture (p = 1, 2)",
    "sound certified <= attacked (every p)",
)


def claims(res: NetworkResult) -> list[Claim]:
    """The experiment's claims (CLAIMS) checked on this network at each eps (and p)."""
    out = []
    for e in res.eps:
        aa, a3w, wda = (res.pointwise.get((e, n)) for n in ("autoattack", "a3-wda", "wda"))
        if aa is not None and a3w is not None and wda is not None:
            ratio = a3w.seconds / aa.seconds if aa.seconds else math.inf
            gap = 100 * (wda.accuracy - aa.accuracy)
            at = f"{_e(e)}, p = inf:"
            out += [
                Claim(
                    CLAIMS[0],
                    a3w.accuracy <= aa.accuracy,
                    f"{at} A3-WDA {_pct(a3w.accuracy)} %, AA {_pct(aa.accuracy)} %",
                ),
                Claim(
                    CLAIMS[1],
                    ratio <= 0.1,
                    f"{at} A3-WDA time / AA time {ratio:.3f}, passes {a3w.passes:.0f} vs {aa.passes:.0f}",
                ),
                Claim(CLAIMS[2], abs(gap) <= 1, f"{at} WDA - AA = {gap:+.1f} points"),
            ]
        for p in P_FINITE:
            best = res.distributional[(e, p, "best")]
            wpgd = res.distributional[(e, p, "w-pgd")]
            mix = min(res.distributional[(e, p, f"kappa {k}")] for k in KAPPAS)
            where = f"{_e(e)}, p = {p:g}: best {_pct(best)} %"
            out += [
                Claim(
                    CLAIMS[3], best <= wpgd, f"{where}, W-PGD {_pct(wpgd)} % (by {100 * (wpgd - best):.1f})"
                ),
                Claim(
                    CLAIMS[4],
                    best <= mix,
                    f"{where}, least kappa-mixture {_pct(mix)} % (by {100 * (mix - best):.1f})",
                ),
            ]
        gaps = [
            res.distributional[(e, p, "best")] - res.certified[(e, p, c)]
            for p in (*P_FINITE, math.inf)
            for c in CERTS
            if (e, p, c) in res.certified and c != "first-order"
        ]
        if gaps:
            out.append(
                Claim(CLAIMS[5], min(gaps) >= -1e-12, f"{_e(e)}: least band {100 * min(gaps):.1f} points")
            )
    return out


def checks(res: NetworkResult) -> list[str]:
    """The claims checked on this network, one line each (the claim, then whether it holds)."""
    return [f"- {c.name}: {c.holds} ({c.text})" for c in claims(res)]


def claims_table(results: list[NetworkResult]) -> list[str]:
    """How many (network, eps, p) each claim holds at, over every network."""
    lines = ["| claim | holds at | of | networks where it fails |", "|---|---|---|---|"]
    for name in CLAIMS:
        found = [(r.net.name, c.holds) for r in results for c in claims(r) if c.name == name]
        failed = sorted({n for n, ok in found if not ok})
        lines.append(f"| {name} | {sum(ok for _, ok in found)} | {len(found)} | {', '.join(failed) or '-'} |")
    return lines


def sandwich_plot(res: NetworkResult, path: Path) -> None:
    """Attacked (best attack, solid) and certified (best sound, dashed) accuracy against eps per p."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    colours = {1.0: "tab:red", 2.0: "tab:blue", math.inf: "tab:green"}
    eps = [0.0, *res.eps]
    for p, colour in colours.items():
        attacked = [res.clean, *(res.distributional[(e, p, "best")] for e in res.eps)]
        ax.plot([e * 255 for e in eps], attacked, "o-", color=colour, label=f"p={p:g} attacked")
        sound = [c for c in CERTS if c != "first-order" and c not in res.cert_skipped]
        if sound:
            cert = [res.clean, *(max(res.certified[(e, p, c)] for c in sound) for e in res.eps)]
            ax.plot([e * 255 for e in eps], cert, "s--", color=colour, mfc="none", label=f"p={p:g} certified")
    ax.set_xlabel("eps (x 1/255), linf cost")
    ax.set_ylabel("distributional robust accuracy")
    ax.set_title(f"{res.net.name} ({res.n} CIFAR-10 test images)")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def record(res: NetworkResult) -> dict:
    """A RobustBench-style model_info record (the fields of ``report.robustbench``; autoattack_acc at the
    benchmark's own eps) with the distributional figures under ``wdrobust``."""
    own = res.eps[0] if len(res.eps) == 1 else min(res.eps, key=lambda e: abs(e - res.eps[0]))
    aa = res.pointwise.get((own, "autoattack"))
    return {
        "schema": MODEL_INFO_SCHEMA,
        "link": None,
        "name": res.net.name,
        "authors": None,
        "additional_data": None,
        "number_forward_passes": 1,
        "dataset": "cifar10 (VNN-COMP test images)",
        "venue": None,
        "architecture": res.net.what,
        "eps": _e(own),
        "clean_acc": f"{100 * res.clean:.2f}",
        "reported": None,
        "autoattack_acc": None if aa is None else f"{100 * aa.accuracy:.2f}",
        "threat_model": THREAT_NAMES["linf"],
        "n": res.n,
        "wdrobust": [
            {
                "eps": _e(e),
                "p": "inf" if math.isinf(p) else p,
                "accuracy_attacked": res.distributional[(e, p, "best")],
                "accuracy_certified": max(
                    (
                        res.certified[(e, p, c)]
                        for c in CERTS
                        if (e, p, c) in res.certified and c != "first-order"
                    ),
                    default=None,
                ),
            }
            for e in res.eps
            for p in (*P_FINITE, math.inf)
        ],
    }


def document(results: list[NetworkResult], out: Path) -> str:
    """docs/paper.md: the summary, then per network its command, tables, checks and plot."""
    total = sum(r.seconds for r in results) / 60
    lines = [
        "# The paper's CIFAR-10 experiment on real networks and test images",
        "",
        f"Regenerated network by network (each section names its command and time; {total:.0f} minutes in "
        "all on this machine's 2 shared CPU cores), then assembled from the caches in docs/paper/cache by "
        "`PYTHONPATH=src .venv/bin/python scripts/paper_table.py --assemble` "
        "(scripts/paper_table.py says what each figure is). Images: the CIFAR-10 test images recovered from "
        "the VNN-COMP properties (image, label and eps; `scripts/vnnlib_export.py`); l_inf cost; "
        "accuracies in %, on the first n images of each benchmark (small n: one image is "
        f"{100 / max(min(r.n for r in results), 1):.0f} points on the smallest set).",
        "",
        "| network | n | clean | eps | AA | A3-WDA | A3-WDA time / AA time | WDA | best p=2 | best p=1 | "
        "certified p=inf (crown) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for e in r.eps:
            aa, a3w, wda = (r.pointwise.get((e, n)) for n in ("autoattack", "a3-wda", "wda"))
            ratio = "-" if aa is None or a3w is None or not aa.seconds else f"{a3w.seconds / aa.seconds:.2f}"
            crown = r.certified.get((e, math.inf, "crown"))
            lines.append(
                f"| {r.net.name} | {r.n} | {_pct(r.clean)} | {_e(e)} | {_pct(aa and aa.accuracy)} | "
                f"{_pct(a3w and a3w.accuracy)} | {ratio} | {_pct(wda and wda.accuracy)} | "
                f"{_pct(r.distributional[(e, 2.0, 'best')])} | {_pct(r.distributional[(e, 1.0, 'best')])} | "
                f"{_pct(crown)} |"
            )
    lines += [
        "",
        "The issue's claims, checked per (network, eps, p) by `claims` (each network's Checks below give the "
        "figures and margins in points):",
        "",
        *claims_table(results),
    ]
    for r in results:
        lines += [
            "",
            f"## {r.net.name}: {r.net.what}",
            "",
            f"{r.n} images, clean accuracy {_pct(r.clean)} %. Run: `{r.command}` "
            f"({r.seconds / 60:.1f} minutes).",
            "",
            "Point-wise (p = inf):",
            "",
            *pointwise_table(r),
            "",
        ]
        lines += [f"Not run: {a}: {why}." for a, why in r.attack_skipped.items()]
        lines += [
            "",
            "Distributional (p = 1, 2), accuracy %:",
            "",
            *distributional_table(r),
            "",
            "Certificates (certified accuracy %; band = attacked - best sound):",
            "",
            *certificate_table(r),
            "",
            "Checks:",
            "",
            *checks(r),
            "",
            f"![sandwich {r.net.name}](paper/{r.net.name}.png)",
        ]
        sandwich_plot(r, out.parent / "paper" / f"{r.net.name}.png")
        records = out.parent / "paper" / "records"
        records.mkdir(parents=True, exist_ok=True)
        (records / f"{r.net.name}.json").write_text(json.dumps(record(r), indent=1) + "\n")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    root = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=root.parent / "shared", help="the shared folder")
    parser.add_argument("--n", type=int, default=0, help="cap on the images per network (0: the defaults)")
    parser.add_argument(
        "--networks", default=",".join(n.name for n in NETWORKS), help="names, comma-separated"
    )
    parser.add_argument("--eps", default="own,2/255,8/255", help="radii: 'own' (the benchmark's) and k/255")
    parser.add_argument(
        "--autoattack", default="all", help="networks the reference AutoAttack runs on (all, none)"
    )
    parser.add_argument("--autoattack-eps", default="", help="radii AutoAttack runs at (default: --eps)")
    parser.add_argument("--crown-options", default="", help="crown's options, e.g. intermediate=ibp")
    parser.add_argument(
        "--crown-cap", type=float, default=math.inf, help="crown's seconds on the first image, at most"
    )
    parser.add_argument("--assemble", action="store_true", help="only rebuild OUT from the caches")
    parser.add_argument("--skip-certificates", default="", help="certificates not to run, comma-separated")
    parser.add_argument("--cache", type=Path, default=root / "runs" / "paper", help="exported images")
    parser.add_argument("--out", type=Path, default=root / "docs" / "paper.md")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    if not (args.shared / "benchmarks" / "vnncomp").is_dir():
        print(f"skipped: {args.shared}/benchmarks/vnncomp not found (nothing written)")
        return 0
    known = {n.name: n for n in NETWORKS}
    chosen = [s for s in args.networks.split(",") if s]
    unknown = [s for s in chosen if s not in known]
    if unknown or args.n < 0:
        print(
            f"error: unknown network {unknown[0]!r}" if unknown else "error: --n must be >= 0",
            file=sys.stderr,
        )
        return 2
    try:
        parse_options(args.crown_options)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    command = "PYTHONPATH=src .venv/bin/python scripts/paper_table.py " + " ".join(argv or sys.argv[1:])
    cache = args.out.parent / "paper" / "cache"
    for name in [] if args.assemble else chosen:
        net = known[name]
        if net.arch and not _resnet18_file():
            print(f"{name}: skipped (pyautoattack is not installed)")
            continue
        if net.arch:
            net = dataclasses.replace(net, model=_resnet18_file())
        began = time.perf_counter()
        res = evaluate_network(args.shared, net, args, lambda s: print(s, flush=True))
        res.seconds, res.command = time.perf_counter() - began, command
        print("\n".join(checks(res)), flush=True)
        # cached after every network, so an interrupted run keeps the networks it finished
        cache.mkdir(parents=True, exist_ok=True)
        (cache / f"{name}.json").write_text(json.dumps(res.to_json(), indent=1) + "\n")
    results = [
        NetworkResult.from_json(json.loads((cache / f"{n.name}.json").read_text()), n)
        for n in NETWORKS
        if (cache / f"{n.name}.json").is_file()
    ]
    if results:
        args.out.write_text(document(results, args.out))
    print(f"wrote {args.out} ({len(results)} networks) in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
