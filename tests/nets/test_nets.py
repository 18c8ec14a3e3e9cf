"""Architectures, the registry, torch.fx visibility of activations, and checkpoint save/load."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.fx import symbolic_trace

from wdrobust import nets

#: Small configurations of every architecture (heavy ones at their smallest meaningful size).
CASES = [
    ("mlp", {"input_shape": [1, 8, 8], "widths": [16, 8], "activation": "leaky_relu"}),
    ("mlp", {"input_shape": [5], "num_classes": 3, "widths": [], "activation": "relu"}),
    ("cnn", {"input_shape": [1, 8, 8], "widths": [4, 8], "hidden": 16, "activation": "elu"}),
    ("cnn", {"input_shape": [1, 28, 28], "widths": [4, 8], "hidden": 16}),
    ("cnn", {"input_shape": [3, 32, 32], "widths": [4, 8], "hidden": 16, "activation": "silu"}),
    ("resnet18", {"input_shape": [1, 8, 8]}),
    ("preact_resnet18", {"input_shape": [3, 16, 16], "activation": "gelu"}),
    ("wide_resnet", {"input_shape": [3, 32, 32], "depth": 10, "widen_factor": 1, "activation": "silu"}),
    ("vit_tiny", {"input_shape": [1, 8, 8], "dim": 16, "depth": 2, "heads": 2}),
    ("vit_tiny", {"input_shape": [3, 32, 32], "patch": 8, "dim": 16, "depth": 1, "heads": 4}),
]
IDS = [f"{arch}-{'x'.join(map(str, kw['input_shape']))}" for arch, kw in CASES]


def _inputs(kwargs: dict, n: int = 3) -> torch.Tensor:
    return torch.rand(n, *kwargs["input_shape"], generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize(("arch", "kwargs"), CASES, ids=IDS)
def test_shapes_fx_activations_and_round_trip(tmp_path, arch, kwargs):
    model = nets.build(arch, seed=0, **kwargs).eval()
    x = _inputs(kwargs)
    z = model(x)
    assert z.shape == (3, kwargs.get("num_classes", 10)) and torch.isfinite(z).all()
    # every nonlinearity is a module in the fx graph, none in place
    graph = symbolic_trace(model)
    called = [type(graph.get_submodule(n.target)) for n in graph.graph.nodes if n.op == "call_module"]
    act = nets.ACTIVATIONS[kwargs.get("activation", "gelu" if arch == "vit_tiny" else "relu")]
    if kwargs.get("widths") != []:
        assert act in called
    functional = {torch.relu, torch.nn.functional.relu, torch.nn.functional.gelu, torch.nn.functional.silu}
    assert not [n for n in graph.graph.nodes if n.op == "call_function" and n.target in functional]
    assert not [m for m in model.modules() if getattr(m, "inplace", False)]
    # save / load reproduces the logits exactly, in eval mode
    path = nets.save(model, tmp_path / "m.safetensors", metadata={"note": "test"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "m.safetensors"]  # no temporary files
    header = json.loads((tmp_path / "m.json").read_text())
    assert header["arch"] == arch and header["kwargs"] == kwargs and header["metadata"] == {"note": "test"}
    loaded = nets.load(path, device="cpu")
    assert not loaded.training and torch.equal(loaded(x), z)
    assert nets.load_metadata(path)["metadata"]["note"] == "test"


def test_build_seed_options_and_errors():
    a, b = (nets.build("mlp", seed=3, widths=[8]) for _ in range(2))
    c = nets.build("mlp", seed=4, widths=[8])
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a[1].weight, c[1].weight)
    assert nets.arch_options("wide_resnet")["depth"] == 28
    with pytest.raises(ValueError, match="unknown architecture 'vgg'"):
        nets.build("vgg")
    with pytest.raises(ValueError, match="has no option depth"):
        nets.build("mlp", depth=3)
    with pytest.raises(ValueError, match="unknown activation 'tanh'"):
        nets.build("mlp", activation="tanh")
    with pytest.raises(ValueError, match="depth must be 6n"):
        nets.build("wide_resnet", depth=12)
    with pytest.raises(ValueError, match="not divisible by patch"):
        nets.build("vit_tiny", input_shape=[1, 28, 28], patch=8)


def test_normalize_is_a_first_layer_without_state():
    mean, std = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]
    plain = nets.build("preact_resnet18", seed=0, input_shape=[3, 8, 8]).eval()
    normed = nets.build("preact_resnet18", seed=0, input_shape=[3, 8, 8], mean=mean, std=std).eval()
    assert plain.state_dict().keys() == normed.state_dict().keys()  # checkpoints stay compatible
    x = torch.rand(2, 3, 8, 8)
    shift, scale = torch.tensor(mean).reshape(1, 3, 1, 1), torch.tensor(std).reshape(1, 3, 1, 1)
    torch.testing.assert_close(normed(x), plain((x - shift) / scale))
    mlp = nets.build("mlp", input_shape=[4], mean=[0.5] * 4, std=[2.0] * 4)
    assert isinstance(mlp[0], nets.Normalize) and mlp[0].mean.shape == (1, 4)
    with pytest.raises(ValueError, match="both mean and std"):
        nets.build("mlp", mean=[0.5])
    with pytest.raises(ValueError, match="std must be positive"):
        nets.Normalize([0.5], [0.0])


def test_save_errors_leave_nothing(tmp_path):
    with pytest.raises(ValueError, match=r"must end in \.safetensors"):
        nets.save(nets.build("mlp"), tmp_path / "m.pt")
    with pytest.raises(ValueError, match=r"not made by wdrobust\.nets\.build"):
        nets.save(nn.Linear(2, 2), tmp_path / "m.safetensors")
    assert not list(tmp_path.iterdir())
    with pytest.raises(FileNotFoundError, match="not found"):
        nets.load(tmp_path / "none.safetensors")


def test_plain_torch_state_dicts(tmp_path):
    model = nets.build("cnn", seed=0, widths=[4, 4], hidden=8).eval()
    x = torch.rand(2, 1, 8, 8)
    state = model.state_dict()
    torch.save(state, tmp_path / "plain.pt")
    torch.save(
        {"epoch": 3, "state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "wrapped.pth"
    )
    for name in ("plain.pt", "wrapped.pth"):
        loaded = nets.load(tmp_path / name, device="cpu", arch="cnn", widths=[4, 4], hidden=8)
        assert torch.equal(loaded(x), model(x))
    with pytest.raises(ValueError, match=r"'cnn': wrong shape, layer 0\.weight: checkpoint \(4, 1, 3, 3\)"):
        nets.load(tmp_path / "plain.pt", arch="cnn")  # default widths: wrong shapes
    with pytest.raises(FileNotFoundError, match="sidecar"):
        nets.load(tmp_path / "plain.pt")  # no arch given and no sidecar


class _Evil:
    def __reduce__(self):
        return (print, ("unpickling executed code",))


def test_arbitrary_pickles_are_refused(tmp_path, capsys):
    torch.save({"weight": torch.zeros(2), "x": _Evil()}, tmp_path / "evil.pt")
    with pytest.raises(
        ValueError, match=r"refusing to load .*evil\.pt.*GLOBAL print was not an allowed global"
    ):
        nets.load(tmp_path / "evil.pt", arch="mlp")
    assert "executed" not in capsys.readouterr().out
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match=r"junk\.pt"):
        nets.load(tmp_path / "junk.pt", arch="mlp")
    (tmp_path / "m.h5").write_bytes(b"")
    with pytest.raises(ValueError, match="unknown model file type"):
        nets.load(tmp_path / "m.h5")


def test_wide_resnet_loads_convshortcut_keys():
    source = nets.build("wide_resnet", seed=0, input_shape=[3, 8, 8], depth=10, widen_factor=2).eval()
    trades = {k.replace(".shortcut.0.", ".convShortcut."): v for k, v in source.state_dict().items()}
    assert any(".convShortcut." in k for k in trades)
    target = nets.build("wide_resnet", seed=1, input_shape=[3, 8, 8], depth=10, widen_factor=2).eval()
    target.load_state_dict(trades, strict=True)
    x = torch.rand(2, 3, 8, 8)
    assert torch.equal(target(x), source(x))


def _autoattack_example() -> Path:
    spec = importlib.util.find_spec("pyautoattack")
    if spec is None or spec.origin is None:
        pytest.skip("pyautoattack is not installed")
    return Path(spec.origin).parent / "examples"


def test_autoattack_resnet18_checkpoint_loads_key_for_key():
    examples = _autoattack_example()
    state = torch.load(examples / "model_test.pt", map_location="cpu", weights_only=True)
    model = nets.load(examples / "model_test.pt", device="cpu", arch="resnet18")
    assert model.state_dict().keys() == state.keys()
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    z = model(x)
    assert z.shape == (4, 10) and torch.equal(z, model(x))
    # the reference implementation shipped beside the checkpoint computes the same logits
    ref_spec = importlib.util.spec_from_file_location("autoattack_example_resnet", examples / "resnet.py")
    ref_module = importlib.util.module_from_spec(ref_spec)
    ref_spec.loader.exec_module(ref_module)
    reference = ref_module.ResNet18()
    reference.load_state_dict(state)
    torch.testing.assert_close(z, reference.eval()(x), rtol=1e-5, atol=1e-5)


def test_safetensors_without_or_with_a_broken_sidecar(tmp_path):
    model = nets.build("mlp", seed=0, widths=[8]).eval()
    path = nets.save(model, tmp_path / "m.safetensors")
    side = nets.sidecar_path(path)
    side.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        nets.load(path)
    side.unlink()
    with pytest.raises(FileNotFoundError, match=r"m\.json not found"):
        nets.load(path)
    x = torch.rand(2, 1, 8, 8)
    assert torch.equal(nets.load(path, device="cpu", arch="mlp", widths=[8])(x), model(x))
