"""torch.export archives in nets.load (wdrobust.nets.exported): recognised by their content whatever the
suffix, loaded with the exported module's outputs in eval mode, refused with an architecture, and neither
a TorchScript archive nor a torch.save state dict is taken for one."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import torch

from wdrobust import nets


def export(model: torch.nn.Module, path: Path) -> Path:
    """``model`` saved by torch.export.save with a dynamic batch dimension."""
    example = (torch.rand(2, 1, 8, 8),)
    program = torch.export.export(model, example, dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(program, path)
    return path


def test_an_exported_archive_loads_with_the_original_outputs_under_any_suffix(tmp_path: Path) -> None:
    model = nets.build("cnn", seed=0, input_shape=[1, 8, 8], widths=[4, 4], hidden=8).eval()
    exported = export(model, tmp_path / "model.pt")  # a .pt suffix: recognised by content
    scripted, plain = tmp_path / "scripted.pt", tmp_path / "plain.pt"
    torch.jit.save(torch.jit.script(model), scripted)
    torch.save(model.state_dict(), plain)
    assert nets.is_exported(exported) and not nets.is_exported(scripted) and not nets.is_exported(plain)
    assert not nets.is_torchscript(exported)
    loaded = nets.load(exported, device="cpu")
    for n in (1, 5):  # the batch dimension is dynamic
        x = torch.rand(n, 1, 8, 8)
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    assert not loaded.training and loaded.original_name == "torch.export"
    with pytest.raises(ValueError, match=r"torch\.export archive: it carries its architecture"):
        nets.load(exported, device="cpu", arch="cnn")


def test_a_broken_exported_archive_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.pt2"
    with zipfile.ZipFile(path, "w") as archive:  # the format record, nothing loadable beside it
        archive.writestr("broken/archive_format", b"pt2")
    assert nets.is_exported(path)
    with pytest.raises(ValueError, match=r"cannot load .* as a torch.export archive") as info:
        nets.load(path, device="cpu")
    assert "\n" not in str(info.value)
