"""Shared fixtures: the digits test split and the default digits MLP (trained once per session).

Each test process uses one torch CPU thread: `make test` runs two xdist workers on two cores, and the
small models of the suite only lose from intra-op threads that contend for them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from wdrobust import data, nets
from wdrobust.models import ensure_default_model

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def digits_test() -> tuple[torch.Tensor, torch.Tensor]:
    """The digits test split on cpu: x (450, 1, 8, 8) in [0, 1], y (450,)."""
    return data.load("digits", "test", device="cpu")


@pytest.fixture(scope="session")
def digits_mlp_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Checkpoint of the default digits MLP, trained into a session cache (about 1.5 s)."""
    return ensure_default_model(device="cpu", cache=tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def digits_mlp(digits_mlp_path: Path) -> torch.nn.Module:
    """The default digits MLP on cpu in eval mode (do not train it in place)."""
    return nets.load(digits_mlp_path, device="cpu")
