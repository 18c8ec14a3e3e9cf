"""A user's own architecture SOURCE:Class (wdrobust.nets.custom, through the registry and nets.load): the
class is found in a .py file or a module, constructed with typed or literal options, loaded with the
checkpoint's weights (outputs equal to the original module's), and every mistake is one ValueError line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch

from wdrobust import nets
from wdrobust.nets import custom

SOURCE = textwrap.dedent(
    """
    from torch import nn
    from helper_block import block  # a neighbour of this file


    class Net(nn.Module):
        def __init__(self, hidden, input_shape=(1, 8, 8), num_classes=10, scale=None):
            super().__init__()
            d = 1
            for s in input_shape:
                d *= s
            self.scale = scale
            self.body = nn.Sequential(nn.Flatten(), *block(d, hidden), nn.Linear(hidden, num_classes))

        def forward(self, x):
            return self.body(x)


    def not_a_class():
        return nn.Linear(2, 2)


    class Plain:
        pass
    """
)


@pytest.fixture
def user_file(tmp_path: Path) -> Path:
    """A user's model file with a neighbour module it imports."""
    (tmp_path / "helper_block.py").write_text("from torch import nn\n\ndef block(d, h):\n"
                                              "    return [nn.Linear(d, h), nn.ReLU()]\n")  # fmt: skip
    path = tmp_path / "my_net.py"
    path.write_text(SOURCE)
    return path


def test_options_of_a_user_class_are_its_constructor_parameters(user_file: Path) -> None:
    arch = f"{user_file}:Net"
    options = nets.arch_options(arch)
    assert list(options) == ["hidden", "input_shape", "num_classes", "scale"]
    parsed = nets.parse_arch_options(arch, ["hidden=16", "input_shape=1,8,8", "scale=0.5", "num_classes=3"])
    assert parsed == {"hidden": 16, "input_shape": [1, 8, 8], "scale": 0.5, "num_classes": 3}
    assert nets.parse_arch_options(arch, ["scale=1,2.5"]) == {"scale": [1.0, 2.5]}
    assert nets.parse_arch_options(arch, ["hidden=wide"]) == {"hidden": "wide"}
    assert nets.display_name(arch) == "Net" and nets.display_name("mlp") == "mlp"


def test_a_state_dict_loads_into_the_user_class_with_the_original_outputs(
    user_file: Path, tmp_path: Path
) -> None:
    arch = f"{user_file}:Net"
    original = nets.build(arch, seed=3, hidden=12, num_classes=4)
    path = tmp_path / "weights.pt"
    torch.save({"state_dict": original.state_dict()}, path)
    loaded = nets.load(path, device="cpu", arch=arch, hidden=12)  # num_classes read from the weights
    x = torch.rand(5, 1, 8, 8)
    torch.testing.assert_close(loaded(x), original(x), rtol=0, atol=0)
    assert not loaded.training


@pytest.mark.parametrize(
    ("arch", "message"),
    [
        ("{dir}/absent.py:Net", "no Python file"),
        ("no_such_module_xyz.nets:Net", "no module named 'no_such_module_xyz'"),
        ("{file}:Missing", "has no class 'Missing'"),
        ("{file}:Plain", "is a class, not a torch.nn.Module subclass"),
        ("{file}:not_a_class", "is a function, not a torch.nn.Module subclass"),
        (":Net", "expected SOURCE:Class"),
    ],
)
def test_a_missing_source_or_class_is_one_line(user_file: Path, arch: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        nets.arch_options(arch.format(dir=user_file.parent, file=user_file))
    assert "\n" not in str(info.value)


def test_import_and_constructor_failures_are_one_line(user_file: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("import torch\nraise RuntimeError('boom\\nsecond line')\n")
    with pytest.raises(ValueError, match=r"importing .*broken.py failed: RuntimeError: boom$"):
        custom.load_class(f"{broken}:Net")
    with pytest.raises(ValueError, match=r"failed to construct with no options: TypeError: .*hidden"):
        nets.build(f"{user_file}:Net")
    with pytest.raises(ValueError, match="has no option 'depth': accepted hidden, input_shape"):
        nets.parse_arch_options(f"{user_file}:Net", ["depth=3"])


def test_a_state_dict_that_does_not_fit_names_the_first_key_and_both_shapes(
    user_file: Path, tmp_path: Path
) -> None:
    arch = f"{user_file}:Net"
    path = tmp_path / "weights.pt"
    torch.save(nets.build(arch, seed=0, hidden=12).state_dict(), path)
    mismatch = r"layer body.1.weight: checkpoint \(12, 64\), architecture \(8, 64\)"
    with pytest.raises(ValueError, match=mismatch):
        nets.load(path, device="cpu", arch=arch, hidden=8)


def test_a_sidecar_never_imports_a_user_class(user_file: Path, tmp_path: Path) -> None:
    model = nets.build("mlp", seed=0, input_shape=[1, 8, 8], widths=[4])
    path = nets.save(model, tmp_path / "m.safetensors")
    side = nets.sidecar_path(path)
    side.write_text(side.read_text().replace('"arch": "mlp"', f'"arch": "{user_file}:Net"'))
    with pytest.raises(ValueError, match="unknown architecture"):
        nets.load(path, device="cpu")
