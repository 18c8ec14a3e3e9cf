"""Network architectures, input normalisation, saving/loading and margin gradients.

Architectures (registry names): ``mlp``, ``cnn``, ``resnet18``, ``preact_resnet18``, ``wide_resnet``,
``vit_tiny`` (layer layouts in docs/models.md), or a user's own ``SOURCE:Class`` (``nets.custom``).
``build(arch, **kwargs)`` constructs one; ``save`` / ``load`` write and read safetensors
checkpoints with a JSON sidecar (see nets/io.py), or plain .pt state_dicts with a given ``arch``.
A model trained on normalised inputs is evaluated as ``normalized(model, mean, std)``: wdrobust's inputs
are always x in [0, 1] and the normalisation ``Normalize`` is the model's first layer.
"""

from wdrobust.nets.cnn import SmallCNN
from wdrobust.nets.exported import is_exported
from wdrobust.nets.gradients import margin_gradients
from wdrobust.nets.io import is_torchscript, load, load_metadata, save, sidecar_path
from wdrobust.nets.layers import ACTIVATIONS, Normalize, make_activation, normalized
from wdrobust.nets.mlp import MLP
from wdrobust.nets.registry import (
    ARCHS,
    ModelSpec,
    arch_options,
    build,
    check_arch,
    display_name,
    parse_arch_options,
    spec_of,
)
from wdrobust.nets.resnet import ResNet, preact_resnet18, resnet18
from wdrobust.nets.vit import VisionTransformer
from wdrobust.nets.wide_resnet import WideResNet

mlp = MLP
cnn = SmallCNN
wide_resnet = WideResNet
vit_tiny = VisionTransformer

__all__ = [
    "ACTIVATIONS",
    "ARCHS",
    "MLP",
    "ModelSpec",
    "Normalize",
    "ResNet",
    "SmallCNN",
    "VisionTransformer",
    "WideResNet",
    "arch_options",
    "build",
    "check_arch",
    "cnn",
    "display_name",
    "is_exported",
    "is_torchscript",
    "load",
    "load_metadata",
    "make_activation",
    "margin_gradients",
    "mlp",
    "normalized",
    "parse_arch_options",
    "preact_resnet18",
    "resnet18",
    "save",
    "sidecar_path",
    "spec_of",
    "vit_tiny",
    "wide_resnet",
]
