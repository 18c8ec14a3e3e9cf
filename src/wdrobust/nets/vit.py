"""A small Vision Transformer (pre-norm blocks: LayerNorm, multi-head self-attention, GELU MLP)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from wdrobust.nets.layers import make_activation, normalize_layer


class Attention(nn.Module):
    """Multi-head self-attention on tokens t (N, T, D): softmax(q k^T / sqrt(D / h)) v per head, then proj."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"vit_tiny: dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.softmax = nn.Softmax(dim=-1)
        self.proj = nn.Linear(dim, dim)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        n, tokens, dim = t.shape
        q, k, v = self.qkv(t).reshape(n, tokens, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        weights = self.softmax((q @ k.transpose(-2, -1)) * self.scale)
        return self.proj((weights @ v).transpose(1, 2).reshape(n, tokens, dim))


class TransformerBlock(nn.Module):
    """t + attn(norm1(t)), then u + mlp(norm2(u)) with mlp = fc2(gelu(fc1(.)))."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int, activation: str) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, mlp_ratio * dim), make_activation(activation), nn.Linear(mlp_ratio * dim, dim)
        )

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        t = t + self.attn(self.norm1(t))
        return t + self.mlp(self.norm2(t))


class VisionTransformer(nn.Module):
    """ViT: non-overlapping patch x patch embedding (a strided conv), a class token, learned position
    embeddings, ``depth`` transformer blocks, final LayerNorm and a linear head on the class token.
    Input (N, C, H, W) with H, W divisible by ``patch`` -> logits (N, num_classes).
    """

    def __init__(
        self,
        input_shape: Sequence[int] = (1, 8, 8),
        num_classes: int = 10,
        patch: int = 4,
        dim: int = 64,
        depth: int = 4,
        heads: int = 4,
        mlp_ratio: int = 2,
        activation: str = "gelu",
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(f"vit_tiny needs image inputs (C, H, W), got input shape {tuple(input_shape)}")
        channels, height, width = (int(s) for s in input_shape)
        if height % patch or width % patch:
            raise ValueError(f"vit_tiny: image size {height}x{width} is not divisible by patch {patch}")
        tokens = (height // patch) * (width // patch)
        self.normalize = normalize_layer(mean, std)
        self.patch_embed = nn.Conv2d(channels, dim, patch, stride=patch)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(0.02 * torch.randn(1, tokens + 1, dim))
        self.blocks = nn.Sequential(
            *(TransformerBlock(dim, heads, mlp_ratio, activation) for _ in range(depth))
        )
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalize is not None:
            x = self.normalize(x)
        t = self.patch_embed(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.cls_token.expand(t.shape[0], -1, -1), t], dim=1) + self.pos_embed
        return self.head(self.norm(self.blocks(t))[:, 0])
