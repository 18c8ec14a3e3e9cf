"""ONNX import (wdrobust.nets.onnx): torch.onnx.export of the built-in architectures and hand-built graphs
(onnx.helper) of every other supported operator give the outputs of torch / onnx's ReferenceEvaluator to
1e-5 relative, for any batch size, and the imported modules trace with torch.fx."""

from __future__ import annotations

import gzip
import io
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from wdrobust import nets
from wdrobust.nets.layers import Normalize
from wdrobust.nets.onnx import OnnxGraph, import_model, load_onnx

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

RTOL = 1e-5


def close(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal to 1e-5 relative to the largest magnitude of b."""
    return bool(np.abs(np.asarray(a) - np.asarray(b)).max() <= RTOL * max(1.0, float(np.abs(b).max())))


def exported(model: nn.Module, shape: tuple[int, ...], opset: int, dynamic: bool = True) -> object:
    f = io.BytesIO()
    axes = {"x": {0: "batch"}, "y": {0: "batch"}} if dynamic else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (torch.rand(1, *shape),),
            f,
            dynamo=False,
            opset_version=opset,
            input_names=["x"],
            output_names=["y"],
            dynamic_axes=axes,
        )
    return onnx.load_model_from_string(f.getvalue())


ARCHS = [
    ("mlp", {"input_shape": [1, 8, 8], "widths": [16, 12]}, 13),
    ("cnn", {"input_shape": [3, 12, 12], "mean": [0.4, 0.5, 0.6], "std": [0.2, 0.25, 0.3]}, 13),
    ("preact_resnet18", {"input_shape": [3, 8, 8]}, 13),
    ("wide_resnet", {"input_shape": [3, 8, 8], "depth": 10, "widen_factor": 1}, 13),
    ("vit_tiny", {"input_shape": [1, 8, 8], "dim": 16, "depth": 2, "heads": 2}, 13),
    ("vit_tiny", {"input_shape": [1, 8, 8], "dim": 16, "depth": 2, "heads": 2}, 17),
    ("vit_tiny", {"input_shape": [1, 8, 8], "dim": 16, "depth": 1, "heads": 2}, 20),
]


@pytest.mark.parametrize(("arch", "options", "opset"), ARCHS)
def test_exported_architectures_match_torch(arch: str, options: dict, opset: int) -> None:
    model = nets.build(arch, seed=0, num_classes=10, **options).eval()
    shape = tuple(options["input_shape"])
    imported = import_model(exported(model, shape, opset))
    x = torch.rand(5, *shape)
    with torch.no_grad():
        assert close(imported(x).numpy(), model(x).numpy())
        traced = torch.fx.symbolic_trace(imported)
        assert close(traced(x).numpy(), model(x).numpy())
    assert imported.input_shape == shape


def test_chain_becomes_sequential_of_torch_layers() -> None:
    model = nets.build("mlp", seed=0, input_shape=[1, 8, 8], num_classes=10, widths=[16]).eval()
    imported = import_model(exported(model, (1, 8, 8), 13))
    assert isinstance(imported, nn.Sequential)
    assert [type(m) for m in imported] == [nn.Flatten, nn.Linear, nn.ReLU, nn.Linear]


def test_leading_sub_div_becomes_normalize() -> None:
    options = {"input_shape": [3, 12, 12], "mean": [0.4, 0.5, 0.6], "std": [0.2, 0.25, 0.3]}
    imported = import_model(exported(nets.build("cnn", seed=0, **options).eval(), (3, 12, 12), 13))
    first = imported[0] if isinstance(imported, nn.Sequential) else imported.layers[0]
    assert isinstance(first, Normalize)
    assert torch.allclose(first.mean.reshape(-1), torch.tensor(options["mean"]))
    assert torch.allclose(first.std.reshape(-1), torch.tensor(options["std"]))


def test_fixed_batch_one_export_accepts_any_batch() -> None:
    model = nets.build("cnn", seed=0, input_shape=[1, 12, 12], num_classes=4).eval()
    imported = import_model(exported(model, (1, 12, 12), 13, dynamic=False))
    x = torch.rand(7, 1, 12, 12)
    with torch.no_grad():
        assert close(imported(x).numpy(), model(x).numpy())


# -- hand-built graphs --------------------------------------------------------------------------------
def graph_model(
    nodes: list, inits: dict[str, np.ndarray], shape: tuple[int, ...], out_rank: int, opset: int = 17
) -> object:
    """A model with input x (batch, *shape), output y of rank out_rank, the given nodes and initializers."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *shape])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * out_rank)
    tensors = [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()]
    graph = helper.make_graph(nodes, "g", [x], [y], tensors)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def check_against_reference(proto: object, shape: tuple[int, ...], batch: int = 3) -> nn.Module:
    """Import proto; its outputs equal the ReferenceEvaluator's on a random batch, traced too."""
    onnx.checker.check_model(proto)
    module = import_model(proto)
    x = np.random.default_rng(0).uniform(-1, 1, (batch, *shape)).astype(np.float32)
    want = ReferenceEvaluator(proto).run(None, {"x": x})[0]
    with torch.no_grad():
        got = module(torch.from_numpy(x)).numpy()
        traced = torch.fx.symbolic_trace(module)(torch.from_numpy(x)).numpy()
    assert got.shape == want.shape
    assert close(got, want)
    assert close(traced, want)
    return module


rng = np.random.default_rng(1)


def w(*shape: int) -> np.ndarray:
    return rng.normal(size=shape).astype(np.float32)


def n(op: str, inputs: list[str], outputs: list[str] | None = None, **attrs: object) -> object:
    return helper.make_node(op, inputs, outputs or ["y"], **attrs)


OPERATOR_GRAPHS = {
    "unary": (
        [
            n("Sigmoid", ["x"], ["a"]),
            n("Tanh", ["a"], ["b"]),
            n("LeakyRelu", ["b"], ["c"], alpha=0.2),
            n("Erf", ["c"], ["d"]),
            n("Exp", ["d"], ["e"]),
            n("Neg", ["e"], ["f"]),
            n("Sqrt", ["e"], ["g"]),
            n("Add", ["f", "g"], ["h"]),
            n("Relu", ["h"]),
        ],
        {},
        (4,),
        2,
    ),
    "gelu": ([n("Gelu", ["x"])], {}, (5,), 2, 20),
    "arith": (
        [
            n("Sub", ["x", "m"], ["a"]),
            n("Div", ["a", "s"], ["b"]),
            n("Mul", ["b", "k"], ["c"]),
            n("Pow", ["c", "two"], ["d"]),
            n("Sub", ["k", "d"]),
        ],
        {"m": w(3, 1, 1), "s": np.abs(w(3, 1, 1)) + 0.5, "k": w(1), "two": np.float32(2.0)},
        (3, 2, 2),
        4,
    ),
    "gemm": ([n("Gemm", ["x", "b", "c"], alpha=0.5, beta=2.0, transB=1)], {"b": w(6, 4), "c": w(6)}, (4,), 2),
    "gemm_notrans": ([n("Gemm", ["x", "b", "c"], transB=0)], {"b": w(4, 6), "c": w(1, 6)}, (4,), 2),
    "matmul_bias": (
        [n("MatMul", ["x", "b"], ["a"]), n("Add", ["c", "a"])],
        {"b": w(4, 6), "c": w(6)},
        (5, 4),
        3,
    ),
    "matmul_dynamic": (
        [n("Transpose", ["x"], ["t"], perm=[0, 2, 1]), n("MatMul", ["x", "t"])],
        {},
        (3, 4),
        3,
    ),
    "conv": (
        [
            n("Conv", ["x", "w", "b"], ["a"], pads=[1, 1, 1, 1], strides=[2, 2], dilations=[1, 1]),
            n("Conv", ["a", "g"], group=2, kernel_shape=[3, 3], dilations=[2, 2]),
        ],
        {"w": w(4, 2, 3, 3), "b": w(4), "g": w(4, 2, 3, 3)},
        (2, 11, 11),
        4,
    ),
    "pools": (
        [
            n("AveragePool", ["x"], ["a"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2]),
            n("MaxPool", ["a"], ["b"], kernel_shape=[2, 2], strides=[1, 1]),
            n("GlobalAveragePool", ["b"]),
        ],
        {},
        (2, 9, 9),
        4,
    ),
    "pad": (
        [n("Pad", ["x", "p", "v"])],
        {"p": np.array([0, 0, 1, 2, 0, 0, 3, 1]), "v": np.float32(0.5)},
        (2, 3, 3),
        4,
    ),
    "batchnorm": (
        [n("BatchNormalization", ["x", "s", "b", "m", "v"], epsilon=1e-3)],
        {"s": w(3), "b": w(3), "m": w(3), "v": np.abs(w(3)) + 0.1},
        (3, 4, 4),
        4,
    ),
    "batchnorm_1d": (
        [n("BatchNormalization", ["x", "s", "b", "m", "v"])],
        {"s": w(3), "b": w(3), "m": w(3), "v": np.abs(w(3)) + 0.1},
        (3, 5),
        3,
    ),
    "layernorm": ([n("LayerNormalization", ["x", "s", "b"], axis=-1)], {"s": w(6), "b": w(6)}, (4, 6), 3),
    "layernorm_decomposed": (
        [
            n("ReduceMean", ["x"], ["m"], axes=[-1]),
            n("Sub", ["x", "m"], ["d"]),
            n("Pow", ["d", "two"], ["p"]),
            n("ReduceMean", ["p"], ["v"], axes=[-1]),
            n("Add", ["v", "eps"], ["ve"]),
            n("Sqrt", ["ve"], ["s"]),
            n("Div", ["d", "s"], ["z"]),
            n("Mul", ["z", "g"], ["zg"]),
            n("Add", ["zg", "b"]),
        ],
        {"two": np.float32(2.0), "eps": np.float32(1e-5), "g": w(6), "b": w(6)},
        (4, 6),
        3,
        17,
    ),
    "reduce_softmax": (
        [n("ReduceSum", ["x", "ax"], ["a"], keepdims=0), n("Softmax", ["a"], axis=-1)],
        {"ax": np.array([1])},
        (3, 5),
        2,
    ),
    "shape_ops": (
        [
            n("Flatten", ["x"], ["f"]),
            n("Unsqueeze", ["f", "one"], ["u"]),
            n("Reshape", ["u", "shape"], ["r"]),
            n("Squeeze", ["r", "three"], ["s"]),
            n("Transpose", ["s"], perm=[0, 2, 1]),
        ],
        {"one": np.array([1]), "shape": np.array([0, 2, -1, 1]), "three": np.array([3])},
        (2, 3, 2),
        3,
    ),
    "slice_gather_split_concat": (
        [
            n("Slice", ["x", "st", "en", "ax", "sp"], ["a"]),
            n("Gather", ["x", "i"], ["b"], axis=2),
            n("Gather", ["x", "j"], ["c"], axis=1),
            n("Split", ["x", "sizes"], ["d", "e"], axis=2),
            n("Unsqueeze", ["b", "one"], ["b1"]),
            n("Concat", ["a", "b1", "d", "e"], ["f"], axis=2),
            n("Flatten", ["f"], ["g"]),
            n("Flatten", ["c"], ["h"]),
            n("Concat", ["g", "h"], axis=1),
        ],
        {
            "st": np.array([0, 0]),
            "en": np.array([100, -1]),
            "ax": np.array([1, 2]),
            "sp": np.array([1, 2]),
            "i": np.array(-1),
            "j": np.array([[2, 0]]),
            "sizes": np.array([1, 4]),
            "one": np.array([2]),
        },
        (3, 5),
        2,
    ),
    "class_token": (
        [
            n("Shape", ["x"], ["sh"]),
            n("Gather", ["sh", "zero"], ["nb"], axis=0),
            n("Unsqueeze", ["nb", "zeroax"], ["nb1"]),
            n("Concat", ["nb1", "tail"], ["full"], axis=0),
            n("ConstantOfShape", ["full"], ["z"], value=numpy_helper.from_array(np.zeros(1, np.float32))),
            n("Add", ["z", "cls"], ["tok"]),
            n("Concat", ["tok", "x"], ["t"], axis=1),
            n("Cast", ["t"], ["tc"], to=TensorProto.FLOAT),
            n("Identity", ["tc"]),
        ],
        {"zero": np.array(0), "zeroax": np.array([0]), "tail": np.array([1, 4]), "cls": w(4)},
        (3, 4),
        3,
    ),
    "constant_expand": (
        [
            n("Constant", [], ["c"], value=numpy_helper.from_array(w(1, 4))),
            n("Constant", [], ["sz"], value_ints=[3, 4]),
            n("Expand", ["c", "sz"], ["e"]),
            n("Add", ["x", "e"]),
        ],
        {},
        (3, 4),
        3,
    ),
}


@pytest.mark.parametrize("name", sorted(OPERATOR_GRAPHS))
def test_operator_graphs_match_reference(name: str) -> None:
    nodes, inits, shape, rank, *opset = OPERATOR_GRAPHS[name]
    check_against_reference(graph_model(nodes, inits, shape, rank, *opset), shape)


def test_matmul_by_constant_is_a_linear_layer_with_the_added_bias() -> None:
    nodes, inits, shape, rank = OPERATOR_GRAPHS["matmul_bias"]
    module = check_against_reference(graph_model(nodes, inits, shape, rank), shape)
    assert isinstance(module, nn.Sequential) and len(module) == 1 and isinstance(module[0], nn.Linear)
    assert torch.equal(module[0].bias.detach(), torch.from_numpy(inits["c"]))


def test_class_token_is_repeated_over_the_batch() -> None:
    nodes, inits, shape, rank = OPERATOR_GRAPHS["class_token"]
    module = import_model(graph_model(nodes, inits, shape, rank))
    assert isinstance(module, OnnxGraph)
    out = module(torch.rand(6, *shape))
    assert out.shape == (6, 4, 4)
    assert torch.equal(out[:, 0], torch.from_numpy(inits["cls"]).expand(6, 4))


def test_unsupported_operator_is_one_line_naming_it() -> None:
    proto = graph_model(
        [n("Relu", ["x"], ["a"]), helper.make_node("Hardmax", ["a"], ["y"], name="hm")], {}, (3,), 2
    )
    with pytest.raises(ValueError, match=r"^unsupported ONNX operator Hardmax \(node 'hm'\)$"):
        import_model(proto)


def test_batch_mixing_reshape_is_refused() -> None:
    proto = graph_model([n("Reshape", ["x", "s"], name="r")], {"s": np.array([-1])}, (3,), 1)
    with pytest.raises(ValueError, match=r"unsupported ONNX node .r. .*batch"):
        import_model(proto)


def test_load_plain_and_gzipped_files_through_nets_load(tmp_path: Path) -> None:
    model = nets.build("mlp", seed=0, input_shape=[1, 8, 8], num_classes=10, widths=[8]).eval()
    raw = exported(model, (1, 8, 8), 13).SerializeToString()
    (tmp_path / "m.onnx").write_bytes(raw)
    (tmp_path / "m.onnx.gz").write_bytes(gzip.compress(raw))
    x = torch.rand(2, 1, 8, 8)
    for name in ("m.onnx", "m.onnx.gz"):
        loaded = nets.load(tmp_path / name, device="cpu")
        with torch.no_grad():
            assert close(loaded(x).numpy(), model(x).numpy())
    with pytest.raises(ValueError, match="carries its architecture"):
        nets.load(tmp_path / "m.onnx", arch="mlp")
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="is not an ONNX model"):
        load_onnx(tmp_path / "bad.onnx")


def test_without_onnx_the_error_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "m.onnx").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ValueError, match=r"pip install 'wdrobust\[onnx\]'$"):
        load_onnx(tmp_path / "m.onnx")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_runs_on_cuda() -> None:
    model = nets.build("vit_tiny", seed=0, input_shape=[1, 8, 8], num_classes=10, dim=16, depth=1, heads=2)
    imported = import_model(exported(model.eval(), (1, 8, 8), 17)).to("cuda")
    x = torch.rand(4, 1, 8, 8)
    with torch.no_grad():
        assert close(imported(x.cuda()).cpu().numpy(), model(x).numpy())
