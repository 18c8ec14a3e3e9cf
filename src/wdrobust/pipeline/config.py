"""Evaluation configuration: defaults, TOML files, flag overrides, validation and a canonical hash.

A configuration is a flat record (``EvalConfig``). Sources are merged in this order, later ones winning:
the built-in defaults (equal to ``configs/digits-default.toml``), a TOML file (``--config``), command-line
flags. The *canonical* form (sorted JSON of the fields that change results) is stored in the run's store
together with its SHA-256; a run folder refuses a configuration whose hash differs. Beside it the store keeps
every field, eps/p in the user's spelling: the generated JSON form (``_serde.to_json(cfg, strict=False)``,
read back by ``_serde.from_json(EvalConfig, value)``; a field a store lacks takes its default).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wdrobust import nets
from wdrobust._options import resolve
from wdrobust.attacks import ATTACKS
from wdrobust.certify import CERTIFICATES
from wdrobust.data.indices import read_indices
from wdrobust.losses import check_loss
from wdrobust.threat import NORMS, ThreatModel, parse_number

#: Name of the bundled default model (trained on first use and cached).
DEFAULT_MODEL = "digits-default"

#: The run folder of the default model on its default data (``make demo``).
DEFAULT_OUT = "runs/digits-default"

#: Fields that do not change any stored number: left out of the canonical form and its hash (a shard
#: computes some of the units of the same run, so every shard has the run's hash).
RUNTIME_FIELDS = ("out", "device", "threads", "quiet", "label", "shard")
#: Fields added after the first stored runs: left out of the canonical form at their default values, so
#: that the hash of a configuration that does not use them is unchanged.
LATER_FIELDS = ("offset", "indices", "arch", "arch_options", "mean", "std", "keep_points")


@dataclass(frozen=True)
class EvalConfig:
    """Everything ``wdrobust evaluate`` needs. eps and p keep the user's spelling ("8/255", "inf").

    model: a checkpoint path (or the bundled default); arch, arch_options: the architecture of a plain
    .pt/.pth checkpoint without sidecar (input_shape and num_classes default to the data's); mean, std: the
    model is ``nets.normalized(model, mean, std)`` (it was trained on normalised inputs); label: a name for
    the model in the records; keep_points: attack units also store their candidate points (for the
    worst-case image grid; always kept when a certificate reads them, ``needs_points``).
    """

    model: str = DEFAULT_MODEL
    data: str = "digits"
    data_root: str | None = None
    split: str = "test"
    n: int = 450
    offset: int = 0
    indices: str | None = None
    batch_size: int = 150
    norm: str = "linf"
    eps: tuple[str, ...] = ("0.005", "0.01", "0.02", "0.03")
    p: tuple[str, ...] = ("1", "2", "inf")
    losses: tuple[str, ...] = ("ce", "margin", "zero_one")
    attacks: tuple[str, ...] = ("pgd", "apgd", "wda", "wda++")
    certificates: tuple[str, ...] = ("global", "first-order", "local", "cell", "radius", "crown")
    attack_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    certificate_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    seed: int = 0
    out: str | None = None  # None: default_out(model, data), filled in by validate
    device: str | None = None
    threads: int = 1
    quiet: bool = False
    shard: str | None = None
    arch: str | None = None
    arch_options: dict[str, Any] = field(default_factory=dict)
    mean: tuple[str, ...] = ()
    std: tuple[str, ...] = ()
    label: str | None = None
    keep_points: bool = False

    @functools.cached_property
    def eps_values(self) -> tuple[float, ...]:
        """The radii as floats, in the given order (parsed once per configuration)."""
        return tuple(parse_number(e, "eps") for e in self.eps)

    @functools.cached_property
    def p_values(self) -> tuple[float, ...]:
        """The Wasserstein orders as floats (math.inf for "inf"), in the given order (parsed once)."""
        return tuple(parse_number(p, "p") for p in self.p)

    @property
    def normalization(self) -> tuple[list[float], list[float]] | None:
        """(mean, std) as floats, or None when the model takes x in [0, 1] as it is."""
        if not self.mean and not self.std:
            return None
        return [parse_number(m, "mean") for m in self.mean], [parse_number(s, "std") for s in self.std]

    @property
    def stores_points(self) -> bool:
        """Whether attack units store their candidate points (keep_points, or a configured certificate
        reads them: ``needs_points``)."""
        return self.keep_points or any(CERTIFICATES[c].needs_points for c in self.certificates)

    @functools.cached_property
    def grid(self) -> tuple[tuple[str, ThreatModel], ...]:
        """(eps as the user wrote it, ThreatModel(norm, eps, p)) for every point of the grid, eps-major: the
        threat models every later step (plan, aggregation, report) uses, built once."""
        return tuple(
            (text, ThreatModel(self.norm, e, p))
            for text, e in zip(self.eps, self.eps_values, strict=True)
            for p in self.p_values
        )

    def threats(self) -> list[ThreatModel]:
        """Every ThreatModel(norm, eps, p) of the grid, eps-major."""
        return [threat for _, threat in self.grid]


FIELDS = {f.name: f for f in dataclasses.fields(EvalConfig)}
_TUPLES = ("eps", "p", "losses", "attacks", "certificates", "mean", "std")


def split_list(value: str | list | tuple) -> tuple[str, ...]:
    """A comma-separated string or a list -> tuple of stripped strings (numbers kept as text)."""
    items = value.split(",") if isinstance(value, str) else list(value)
    out = tuple(str(v).strip() for v in items)
    if any(not v for v in out):
        raise ValueError(f"empty item in list {value!r}")
    return out


def _coerce(name: str, value: Any) -> Any:
    """Convert a TOML or flag value to the field's type; raise ValueError naming the field."""
    if name in _TUPLES:
        return split_list(value)
    if name in ("n", "offset", "batch_size", "seed", "threads"):
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValueError(f"{name} must be an integer, got {value!r}")
        try:
            return int(value)
        except ValueError:
            raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if name in ("attack_options", "certificate_options"):
        if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
            raise ValueError(f"{name} must be a table of tables ([{name}.NAME])")
        return {str(k): dict(v) for k, v in value.items()}
    if name == "arch_options":
        if not isinstance(value, dict):
            raise ValueError(f"arch_options must be a table of option = value, got {value!r:.60}")
        return {str(k): v for k, v in value.items()}
    if name in ("quiet", "keep_points"):
        return bool(value)
    return None if value is None else str(value)


def merge(base: EvalConfig, overrides: dict[str, Any]) -> EvalConfig:
    """base with the non-None overrides applied; unknown keys raise ValueError."""
    unknown = sorted(set(overrides) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown configuration key {unknown[0]!r}")
    values = {k: _coerce(k, v) for k, v in overrides.items() if v is not None}
    return dataclasses.replace(base, **values)


def load_toml(path: str | Path) -> dict[str, Any]:
    """The key/value table of a TOML configuration file (``[evaluate]`` table or top level)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"configuration file not found: {path}")
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text (byte {exc.start}); TOML files are UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: invalid TOML: {exc}") from None
    return table.get("evaluate", table)


def build_config(config_file: str | Path | None = None, **flags: Any) -> EvalConfig:
    """Defaults <- TOML file <- flags (None means "not given"), then validated.

    With ``indices`` the samples are the listed ones: n becomes their number (an n given as well must
    agree)."""
    cfg = EvalConfig()
    table = {} if config_file is None else load_toml(config_file)
    cfg = merge(merge(cfg, table), flags)
    if cfg.indices is not None:
        count = len(read_indices(cfg.indices))
        if (flags.get("n") is not None or "n" in table) and cfg.n != count:
            raise ValueError(
                f"n = {cfg.n} disagrees with the {count} samples listed in indices file {cfg.indices}; "
                "give one of them"
            )
        cfg = dataclasses.replace(cfg, n=count)
    return validate(cfg)


def parse_shard(text: str) -> tuple[int, int]:
    """Parse a shard "I/K" into (I, K) with 1 <= I <= K; ValueError otherwise."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if match is None:
        raise ValueError(f"shard must be I/K (e.g. 1/4), got {text!r}")
    i, k = int(match[1]), int(match[2])
    if not 1 <= i <= k:
        raise ValueError(f"shard {text!r}: need 1 <= I <= K")
    return i, k


def validate(cfg: EvalConfig) -> EvalConfig:
    """Check everything that can be checked without loading the model or the data.

    Names of attacks and certificates are checked against the registries and their options against the
    declarations (``_options.resolve``: known names, types, checks); eps >= 0, p >= 1, n >= 1,
    offset >= 0, batch_size >= 1, losses known, no duplicates, an indices file that lists n samples, a
    shard I/K (returned as "I/K"). Raises ValueError with a one-line message. A missing out becomes
    ``default_out(model, data)``.
    """
    if cfg.norm not in NORMS:
        raise ValueError(f"unknown norm {cfg.norm!r}: expected one of {', '.join(NORMS)}")
    if cfg.n < 1:
        raise ValueError(f"n must be >= 1, got {cfg.n}")
    if cfg.offset < 0:
        raise ValueError(f"offset must be >= 0, got {cfg.offset}")
    if cfg.indices is not None:
        if cfg.offset:
            raise ValueError("offset and indices both select the samples: give one of them")
        count = len(read_indices(cfg.indices))
        if cfg.n != count:
            raise ValueError(f"n = {cfg.n} but indices file {cfg.indices} lists {count} samples")
    if cfg.threads < 0:
        raise ValueError(f"threads must be >= 0 (0 = all cores), got {cfg.threads}")
    if cfg.batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {cfg.batch_size}")
    for name in ("eps", "p", "losses", "attacks", "certificates"):
        values = getattr(cfg, name)
        if len(set(values)) != len(values):
            raise ValueError(f"{name} lists a value twice: {', '.join(values)}")
    if not cfg.eps or not cfg.p:
        raise ValueError("eps and p need at least one value each")
    if not cfg.attacks and not cfg.certificates:
        raise ValueError("nothing to do: give at least one attack or certificate")
    cfg.threats()  # eps >= 0, finite; p >= 1
    _check_model_options(cfg)
    for loss in cfg.losses:
        check_loss(loss)
    _check_names("attack", ATTACKS, cfg.attacks, cfg.attack_options)
    _check_names("certificate", CERTIFICATES, cfg.certificates, cfg.certificate_options)
    if cfg.shard is not None:
        i, k = parse_shard(cfg.shard)
        cfg = dataclasses.replace(cfg, shard=f"{i}/{k}")
    if cfg.out is None:
        cfg = dataclasses.replace(cfg, out=default_out(cfg.model, cfg.data))
    return cfg


def default_out(model: str, data: str) -> str:
    """The run folder when none is given: runs/<model stem>-<data stem> (runs/digits-mlp-digits for
    runs/models/digits-mlp.safetensors on digits); runs/digits-default for the default model on its default
    data, so that another model never shares the demo's folder."""
    if model == DEFAULT_MODEL and data == FIELDS["data"].default:
        return DEFAULT_OUT
    return str(Path("runs") / f"{Path(model).stem}-{Path(data).stem}")


def _check_model_options(cfg: EvalConfig) -> None:
    """arch registered and its options known; mean and std of equal length, std > 0 (both or neither)."""
    if cfg.arch is not None:
        options = nets.arch_options(cfg.arch)
        unknown = sorted(set(cfg.arch_options) - set(options))
        if unknown:
            raise ValueError(
                f"architecture {cfg.arch!r} has no option {unknown[0]!r}: accepted {', '.join(options)}"
            )
    elif cfg.arch_options:
        raise ValueError("arch_options given without arch")
    norm = cfg.normalization
    if norm is not None:
        if len(norm[0]) != len(norm[1]):
            raise ValueError(
                f"give as many --mean values as --std values, got {len(norm[0])} and {len(norm[1])}"
            )
        if any(s <= 0 for s in norm[1]):
            raise ValueError(f"--std values must be positive, got {', '.join(cfg.std)}")


def _check_names(
    kind: str, registry: dict[str, type], names: tuple[str, ...], options: dict[str, dict]
) -> None:
    """Every name is in the kind's registry; every options table names a listed method and holds options
    that method declares, with valid values."""
    for name in names:
        if name not in registry:
            known = ", ".join(sorted(registry)) or "none registered"
            raise ValueError(f"unknown {kind} {name!r}: expected one of {known}")
    for name, given in options.items():
        if name not in names:
            raise ValueError(f"{kind}_options.{name} given but {name!r} is not in the {kind}s list")
        resolve(registry[name].option_table(), given, f"{kind} {name!r}")


def _number_key(value: float) -> float | str:
    return "inf" if math.isinf(value) else value


def canonical(cfg: EvalConfig) -> dict[str, Any]:
    """The fields that change results, with eps/p as numbers ("inf" for infinity)."""
    out = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in RUNTIME_FIELDS}
    for name in LATER_FIELDS:
        if out[name] == FIELDS[name].default or (name == "arch_options" and not out[name]):
            del out[name]
        elif name in ("mean", "std"):
            out[name] = [parse_number(v, name) for v in out[name]]
    out["eps"] = [_number_key(e) for e in cfg.eps_values]
    out["p"] = [_number_key(p) for p in cfg.p_values]
    out["losses"] = list(cfg.losses)
    out["attacks"] = list(cfg.attacks)
    out["certificates"] = list(cfg.certificates)
    return out


def canonical_json(cfg: EvalConfig) -> str:
    """Sorted, whitespace-free JSON of ``canonical(cfg)``."""
    return json.dumps(canonical(cfg), sort_keys=True, separators=(",", ":"))


def config_hash(cfg: EvalConfig) -> str:
    """SHA-256 hex digest of ``canonical_json(cfg)``."""
    return hashlib.sha256(canonical_json(cfg).encode()).hexdigest()
