"""Evaluation configuration: defaults, TOML files, flag overrides, validation, canonical hash."""

from __future__ import annotations

import math

import pytest
from _paths import ROOT

from wdrobust._serde import from_json, to_json
from wdrobust.pipeline.config import (
    EvalConfig,
    build_config,
    canonical,
    config_hash,
    validate,
)

CONFIGS = ROOT / "configs"


def test_default_equals_bundled_toml():
    assert build_config(CONFIGS / "digits-default.toml") == build_config() == validate(EvalConfig())


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.toml")))
def test_every_bundled_config_parses(name):
    cfg = build_config(CONFIGS / name)
    assert cfg.threats()


def test_flags_override_file(tmp_path):
    path = tmp_path / "eval.toml"
    path.write_text('n = 17\neps = ["8/255"]\nattacks = ["pgd"]\n[attack_options.pgd]\nsteps = 3\n')
    cfg = build_config(path, n=5, p="1,inf")
    assert cfg.n == 5
    assert cfg.eps_values == (8 / 255,)
    assert cfg.p_values == (1.0, math.inf)
    assert cfg.attacks == ("pgd",)
    assert cfg.attack_options == {"pgd": {"steps": 3}}


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"eps": "-0.1"}, "eps must be >= 0"),
        ({"p": "0.5"}, "p must be >= 1"),
        ({"attacks": "nosuch"}, "unknown attack 'nosuch'"),
        ({"certificates": "nosuch"}, "unknown certificate 'nosuch'"),
        ({"norm": "l3"}, "unknown norm"),
        ({"n": 0}, "n must be >= 1"),
        ({"losses": "hinge"}, "unknown loss"),
        ({"eps": "0.1,0.1"}, "twice"),
        ({"n": "many"}, "n must be an integer"),
    ],
)
def test_bad_values_raise_one_line(flags, message):
    with pytest.raises(ValueError, match=message) as info:
        build_config(**flags)
    assert "\n" not in str(info.value)


def test_unknown_key_in_file(tmp_path):
    path = tmp_path / "eval.toml"
    path.write_text("epsilon = 0.1\n")
    with pytest.raises(ValueError, match="unknown configuration key 'epsilon'"):
        build_config(path)


def test_options_for_unlisted_method(tmp_path):
    path = tmp_path / "eval.toml"
    path.write_text('attacks = ["pgd"]\n[attack_options.wda]\nsteps = 3\n')
    with pytest.raises(ValueError, match="not in the attacks list"):
        build_config(path)


def test_hash_ignores_runtime_fields_and_spelling():
    a = build_config(eps="0.05,0.1", out="runs/a", device="cpu", quiet=True)
    b = build_config(eps="1/20,0.10", out="runs/b")
    assert canonical(a) == canonical(b)
    assert config_hash(a) == config_hash(b)
    assert config_hash(a) != config_hash(build_config(seed=1))


def test_json_round_trip():
    cfg = build_config(eps="8/255", p="2")
    assert from_json(EvalConfig, to_json(cfg, strict=False)) == cfg
