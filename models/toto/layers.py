"""Building blocks of the Toto backbone: RMSNorm, rotary (xPos) embeddings, attention over
time or over variates, the SwiGLU feed-forward network, and one pre-norm transformer layer."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.toto.config import TotoConfig

ROPE_THETA = 10000.0
XPOS_SCALE_BASE = 512.0


class RMSNorm(nn.Module):
    """``x / sqrt(mean(x^2) + eps) * scale`` over the last dimension."""

    def __init__(self, dim: int, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps
        self.scale = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normed = x / torch.sqrt(torch.mean(x * x, dim=-1, keepdim=True) + self.eps)
        return normed * self.scale


class RotaryXPos(nn.Module):
    """Rotary position embeddings with xPos length scaling, as Toto applies them.

    Pairs of channels ``(2i, 2i+1)`` rotate by ``pos * theta^(-2i/d)``. The xPos factor
    ``base^((pos - (S-1)//2) / 512)`` multiplies queries and divides keys, so scores depend on
    relative position only; upstream lays the factor out as ``cat(f, f)`` (not interleaved)
    while the angles are interleaved, and we keep that layout.
    """

    # buffers (``nn.Module.__getattr__`` types them Tensor | Module)
    inv_freq: torch.Tensor
    xpos_base: torch.Tensor

    def __init__(self, head_dim: int) -> None:
        super().__init__()
        half = torch.arange(0, head_dim, 2).float()
        self.register_buffer("inv_freq", 1.0 / ROPE_THETA ** (half / head_dim), persistent=False)
        self.register_buffer(
            "xpos_base", (half + 0.4 * head_dim) / (1.4 * head_dim), persistent=False
        )

    def tables(self, seq_len: int, device: torch.device) -> tuple[torch.Tensor, ...]:
        """cos, sin and xPos scale, each ``(S, head_dim)`` in float32."""
        pos = torch.arange(seq_len, device=device, dtype=torch.float32)  # (S,)
        angles = pos[:, None] * self.inv_freq[None, :]  # (S, hd/2)
        angles = angles.repeat_interleave(2, dim=-1)  # (S, hd)
        power = (pos - (seq_len - 1) // 2) / XPOS_SCALE_BASE  # (S,)
        scale = self.xpos_base[None, :] ** power[:, None]  # (S, hd/2)
        scale = torch.cat((scale, scale), dim=-1)  # (S, hd)
        return angles.cos(), angles.sin(), scale

    def forward(self, q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rotate ``q`` and ``k`` of shape ``(N, H, S, hd)``."""
        cos, sin, scale = self.tables(q.shape[-2], q.device)
        q_out = (q.float() * cos + rotate_pairs(q.float()) * sin) * scale
        k_out = (k.float() * cos + rotate_pairs(k.float()) * sin) / scale
        return q_out.to(q.dtype), k_out.to(k.dtype)


def rotate_pairs(x: torch.Tensor) -> torch.Tensor:
    """``(x0, x1, x2, x3, ...) -> (-x1, x0, -x3, x2, ...)`` over the last dimension."""
    pairs = x.unflatten(-1, (-1, 2))  # (..., hd/2, 2)
    return torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)


class Attention(nn.Module):
    """Multi-head self-attention over time (causal, rotary) or over variates (bidirectional).

    The fused projection ``wQKV`` lays its outputs out as ``(qkv, head_dim, n_heads)``.
    Space-wise attention lets every variate see every other (one series group per batch row).
    """

    def __init__(self, config: TotoConfig, spacewise: bool) -> None:
        super().__init__()
        self.spacewise = spacewise
        self.num_heads = config.num_heads
        self.head_dim = config.head_dim
        self.wQKV = nn.Linear(config.embed_dim, 3 * config.embed_dim)
        self.wO = nn.Linear(config.embed_dim, config.embed_dim)
        self.rotary = None if spacewise else RotaryXPos(config.head_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, V, S, E = x.shape  # (batch, variates, patches, embed)
        # put the attended axis second-to-last and fold the other into the batch
        seq = x.transpose(1, 2).reshape(B * S, V, E) if self.spacewise else x.reshape(B * V, S, E)
        N, L, _ = seq.shape
        qkv = self.wQKV(seq).view(N, L, 3, self.head_dim, self.num_heads)  # (N, L, 3, hd, H)
        q, k, v = qkv.permute(2, 0, 4, 1, 3).unbind(0)  # each (N, H, L, hd)
        if self.rotary is not None:
            q, k = self.rotary(q, k)
        out = F.scaled_dot_product_attention(q, k, v, is_causal=not self.spacewise)  # (N, H, L, hd)
        out = out.transpose(1, 2).reshape(N, L, E)  # (N, L, H*hd)
        if self.spacewise:
            out = out.view(B, S, V, E).transpose(1, 2)  # (B, V, S, E)
        else:
            out = out.view(B, V, S, E)
        return self.wO(out)


class SwiGLU(nn.Module):
    """``w3(silu(gate) * value)`` with ``(gate, value) = w12(x)`` split in halves."""

    def __init__(self, config: TotoConfig) -> None:
        super().__init__()
        self.w12 = nn.Linear(config.embed_dim, 2 * config.mlp_hidden_dim)
        self.w3 = nn.Linear(config.mlp_hidden_dim, config.embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, value = self.w12(x).chunk(2, dim=-1)  # each (..., hidden)
        return self.w3(F.silu(gate) * value)


class TransformerLayer(nn.Module):
    """Pre-norm block: ``x + attn(norm1(x))``, then ``+ mlp(norm2(.))``."""

    def __init__(self, config: TotoConfig, spacewise: bool) -> None:
        super().__init__()
        self.norm1 = RMSNorm(config.embed_dim)
        self.attention = Attention(config, spacewise)
        self.norm2 = RMSNorm(config.embed_dim)
        self.mlp = SwiGLU(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm1(x))  # (B, V, S, E)
        return x + self.mlp(self.norm2(x))
