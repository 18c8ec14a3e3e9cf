"""Shared fixtures: the digits test split and the default digits MLP (the shipped weights).

Each test process uses one torch CPU thread by default: `make test` runs two xdist workers on two cores,
and the small models of the suite only lose from intra-op threads that contend for them. Two options run
the suite under other CPU kernels, to check that no test depends on them: ``--torch-threads N`` (torch's
intra-op threads, also passed to the demo's ``wdrobust evaluate --threads``) and ``--no-onednn``
(``torch.backends.mkldnn.enabled = False``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from wdrobust import data, nets
from wdrobust.models import default_model_path


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--torch-threads", type=int, default=1, help="torch CPU threads per test process")
    parser.addoption("--no-onednn", action="store_true", help="run with torch.backends.mkldnn disabled")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked slow run first (stable order otherwise): xdist deals the first tests to its workers in
    turn, so the long ones start together instead of one of them leaving a worker idle at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_configure(config: pytest.Config) -> None:
    torch.set_num_threads(config.getoption("--torch-threads"))
    if config.getoption("--no-onednn"):
        torch.backends.mkldnn.enabled = False


@pytest.fixture(scope="session")
def torch_threads(request: pytest.FixtureRequest) -> int:
    """The --torch-threads option (default 1)."""
    return request.config.getoption("--torch-threads")


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
