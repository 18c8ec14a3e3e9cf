"""The architecture registry against its page: docs/models.md has a row for every built-in architecture
naming each of its own options (those beyond the common input_shape, num_classes, activation, mean, std)
with its default."""

from __future__ import annotations

import re

import pytest
from _paths import ROOT

from wdrobust import nets

PAGE = ROOT / "docs" / "models.md"
COMMON = {"input_shape", "num_classes", "activation", "mean", "std"}


def rows() -> dict[str, str]:
    """The rows of the page's architecture table by the name in their first cell."""
    found = re.findall(r"^\| `(\w+)` \|(.*)$", PAGE.read_text(), re.M)
    return dict(found)


@pytest.mark.parametrize("arch", list(nets.ARCHS))
def test_models_page_lists_every_architecture_with_its_options(arch: str) -> None:
    row = rows()[arch]
    options = nets.arch_options(arch)
    assert set(options) >= COMMON
    for name, default in options.items():
        if name in COMMON:
            continue
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else str(default)
        assert f"`{name}` {shown}" in row or f"`{name}` ({shown})" in row, (name, row)
