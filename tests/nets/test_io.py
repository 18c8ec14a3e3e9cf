"""TorchScript archives in nets.load (wdrobust.nets.io): recognised by their records, not by their suffix,
loaded whole with the original module's outputs, refused with an architecture, and a torch.save state
dict is still not taken for one."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import torch

from wdrobust import nets


def test_a_torchscript_archive_loads_with_the_original_outputs(tmp_path: Path) -> None:
    model = nets.build("cnn", seed=0, input_shape=[1, 8, 8], widths=[4, 4], hidden=8).eval()
    scripted, plain = tmp_path / "scripted.pt", tmp_path / "plain.pt"
    torch.jit.save(torch.jit.script(model), scripted)
    torch.save(model.state_dict(), plain)
    assert nets.is_torchscript(scripted) and not nets.is_torchscript(plain)
    loaded = nets.load(scripted, device="cpu")
    x = torch.rand(3, 1, 8, 8)
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    assert not loaded.training
    with pytest.raises(ValueError, match="TorchScript archive: it carries its architecture"):
        nets.load(scripted, device="cpu", arch="cnn")


def test_a_broken_torchscript_archive_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "scripted.pt"
    with zipfile.ZipFile(path, "w") as archive:  # TorchScript's records, garbage inside
        for name in ("data.pkl", "constants.pkl", "version"):
            archive.writestr(f"scripted/{name}", b"not a pickle")
    assert nets.is_torchscript(path)
    with pytest.raises(ValueError, match=r"cannot load .* as TorchScript") as info:
        nets.load(path, device="cpu")
    assert "\n" not in str(info.value)
