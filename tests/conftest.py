"""Shared fixtures: the digits test split and the default digits MLP (the shipped weights).

Each test process uses one torch CPU thread: `make test` runs two xdist workers on two cores, and the
small models of the suite only lose from intra-op threads that contend for them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from wdrobust import data, nets
from wdrobust.models import default_model_path

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def digits_test() -> tuple[torch.Tensor, torch.Tensor]:
    """The digits test split on cpu: x (450, 1, 8, 8) in [0, 1], y (450,)."""
    return data.load("digits", "test", device="cpu")


@pytest.fixture(scope="session")
def digits_mlp_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the shipped default digits MLP (checkpoint and sidecar) in a session folder, so that a test
    writing beside it never touches the installed package."""
    shipped = default_model_path()
    folder = tmp_path_factory.mktemp("model")
    for source in (shipped, nets.sidecar_path(shipped)):
        shutil.copy2(source, folder / source.name)
    return folder / shipped.name


@pytest.fixture(scope="session")
def digits_mlp(digits_mlp_path: Path) -> torch.nn.Module:
    """The default digits MLP on cpu in eval mode (do not train it in place)."""
    return nets.load(digits_mlp_path, device="cpu")
