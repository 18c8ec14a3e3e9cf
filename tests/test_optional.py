"""The optional-dependency registry: a registered package imports, a missing one is a one-line ValueError
naming the capability and the pip extra, and every extra it names exists in pyproject.toml (the ONNX
reader's message: tests/nets/test_onnx.py)."""

from __future__ import annotations

import sys
import tomllib

import pytest
from _paths import ROOT

from wdrobust._optional import OPTIONAL, Optional, require


def test_every_entry_names_an_extra_of_the_project() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for name, entry in OPTIONAL.items():
        assert entry.module == name
        assert entry.extra in extras, (name, entry.extra)
        assert any(req.split(">")[0].split("=")[0] == name for req in extras[entry.extra]), name


def test_a_missing_package_is_one_line_with_its_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(OPTIONAL, "nosuchpkg", Optional("nosuchpkg_xyz", "nosuch", "doing the thing"))
    with pytest.raises(ValueError) as info:
        require("nosuchpkg")
    message = str(info.value)
    assert "\n" not in message
    expected = "doing the thing needs the optional package nosuchpkg_xyz: pip install 'wdrobust[nosuch]'"
    assert message == expected


def test_an_installed_package_is_returned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(OPTIONAL, "json", Optional("json", "x", "y"))
    assert require("json") is sys.modules["json"]
