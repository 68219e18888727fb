"""Building blocks shared by the Kronos tokenizer and predictor (inference only).

Attribute names follow the published state-dict keys (``norm1``, ``self_attn.q_proj``, ...).
Every attention is causal over its own sequence; a block can also run one new position
against cached keys and values (:class:`KV`), which is how a single appended token is decoded.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn


class KV(NamedTuple):
    """Rotated keys and values of the positions seen so far."""

    k: torch.Tensor  # (B, nh, T, hs)
    v: torch.Tensor  # (B, nh, T, hs)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.float()
        h = h * torch.rsqrt(torch.mean(h * h, dim=-1, keepdim=True) + self.eps)
        return h.type_as(x) * self.weight


class FeedForward(nn.Module):
    """SwiGLU: ``w2(silu(w1 x) * w3 x)``."""

    def __init__(self, d_model: int, ff_dim: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(d_model, ff_dim, bias=False)
        self.w3 = nn.Linear(d_model, ff_dim, bias=False)
        self.w2 = nn.Linear(ff_dim, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Rotary(nn.Module):
    """Rotary position embedding; ``inv_freq`` is a persistent buffer in the published files."""

    inv_freq: torch.Tensor  # a buffer (``nn.Module.__getattr__`` types it Tensor | Module)

    def __init__(self, head_dim: int) -> None:
        super().__init__()
        inv_freq = 1.0 / (10000 ** (torch.arange(0, head_dim, 2).float() / head_dim))
        self.register_buffer("inv_freq", inv_freq)

    def tables(self, start: int, end: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """cos and sin for positions ``[start, end)``, each (1, 1, end - start, hs)."""
        t = torch.arange(end, device=like.device).type_as(self.inv_freq)
        freqs = torch.einsum("i,j->ij", t, self.inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)[start:]
        return emb.cos()[None, None].to(like.dtype), emb.sin()[None, None].to(like.dtype)

    @staticmethod
    def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x1, x2 = x.chunk(2, dim=-1)
        return x * cos + torch.cat((-x2, x1), dim=-1) * sin


class _Attention(nn.Module):
    """The projections upstream's attention layers share (their state-dict names)."""

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.rotary = Rotary(self.head_dim)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        return x.view(B, T, self.n_heads, self.head_dim).transpose(1, 2)  # (B, nh, T, hs)


class SelfAttention(_Attention):
    """Causal multi-head self-attention with rotary positions."""

    def forward(
        self, x: torch.Tensor, past: KV | None = None, alternatives: bool = False
    ) -> tuple[torch.Tensor, KV]:
        """``x`` (B, T, C) at the positions after ``past``; returns (B, T, C) and the new cache
        (with a ``past`` of batch 1 shared by B > 1 sequences, the new positions' keys and
        values only: the shared part is not copied per sequence).

        With ``alternatives``, the T rows of ``x`` are T candidates for the *same* next
        position: each attends to ``past`` and to itself only, never to the other candidates.
        """
        B, T, C = x.shape
        start = 0 if past is None else past.k.shape[2]
        q = self._heads(self.q_proj(x))  # (B, nh, T, hs)
        k = self._heads(self.k_proj(x))
        v = self._heads(self.v_proj(x))
        cos, sin = self.rotary.tables(start, start + (1 if alternatives else T), q)
        q, k = Rotary.rotate(q, cos, sin), Rotary.rotate(k, cos, sin)
        if past is not None and past.k.shape[0] == 1 and B > 1 and not alternatives:
            y = _after_shared_past(q, k, v, past)  # (B, nh, T, hs)
            y = y.transpose(1, 2).contiguous().view(B, T, C)
            return self.out_proj(y), KV(k, v)
        if past is not None:
            k = torch.cat([past.k, k], dim=2)  # (B, nh, start + T, hs)
            v = torch.cat([past.v, v], dim=2)
        mask = None
        if alternatives:
            seen = torch.ones(T, start, dtype=torch.bool, device=x.device)
            own = torch.eye(T, dtype=torch.bool, device=x.device)
            mask = torch.cat([seen, own], dim=1)  # (T, start + T)
        elif past is not None and T > 1:  # T new positions after past: causal among them
            seen = torch.ones(T, start, dtype=torch.bool, device=x.device)
            own = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
            mask = torch.cat([seen, own], dim=1)  # (T, start + T)
        causal = past is None and not alternatives
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C)
        return self.out_proj(y), KV(k, v)


def _after_shared_past(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, past: KV) -> torch.Tensor:
    """Causal attention of B sequences of T new positions after one past shared by all of them
    (batch 1): softmax over the past's scores and the new positions' own, without copying the
    past B times. ``q, k, v`` (B, nh, T, hs), ``past`` (1, nh, P, hs) -> (B, nh, T, hs)."""
    T, P = q.shape[2], past.k.shape[2]
    scale = 1.0 / math.sqrt(q.shape[-1])
    on_past = torch.matmul(q, past.k.transpose(-1, -2)) * scale  # (B, nh, T, P)
    on_new = torch.matmul(q, k.transpose(-1, -2)) * scale  # (B, nh, T, T)
    causal = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
    on_new = on_new.masked_fill(~causal, float("-inf"))
    weights = torch.softmax(torch.cat([on_past, on_new], dim=-1), dim=-1)
    return torch.matmul(weights[..., :P], past.v) + torch.matmul(weights[..., P:], v)


class Block(nn.Module):
    """Pre-norm transformer block: attention then SwiGLU, each with a residual."""

    def __init__(self, d_model: int, n_heads: int, ff_dim: int) -> None:
        super().__init__()
        self.norm1 = RMSNorm(d_model)
        self.self_attn = SelfAttention(d_model, n_heads)
        self.norm2 = RMSNorm(d_model)
        self.ffn = FeedForward(d_model, ff_dim)

    def forward(
        self, x: torch.Tensor, past: KV | None = None, alternatives: bool = False
    ) -> tuple[torch.Tensor, KV]:
        a, kv = self.self_attn(self.norm1(x), past, alternatives)
        x = x + a
        x = x + self.ffn(self.norm2(x))
        return x, kv


class CrossAttention(_Attention):
    """Queries attending to a sequence's hidden states, with no mask.

    Upstream builds rotary tables from the query length; for its single query that is
    position 0, whose rotation is the identity, so no rotation is applied here. Several
    queries per sequence are independent alternatives (each would be upstream's lone query).
    ``rotary.inv_freq`` is kept only because the published files hold it.
    """

    def keys_values(self, hidden: torch.Tensor) -> KV:
        """(B, T, C) hidden states -> keys and values, each (B, nh, T, hs)."""
        return KV(self._heads(self.k_proj(hidden)), self._heads(self.v_proj(hidden)))

    def forward(self, query: torch.Tensor, kv: KV) -> torch.Tensor:
        """``query`` (B, M, C), ``kv`` of the same B sequences -> (B, M, C)."""
        B, M, C = query.shape
        q = self._heads(self.q_proj(query))  # (B, nh, M, hs)
        y = F.scaled_dot_product_attention(q, kv.k, kv.v)  # (B, nh, M, hs)
        return self.out_proj(y.transpose(1, 2).reshape(B, M, C))


def sinusoid_table(n: int, d_model: int) -> torch.Tensor:
    """The fixed (not learnt) time-embedding table upstream uses when ``learn_te`` is false."""
    w = torch.zeros(n, d_model)
    position = torch.arange(0, n).float().unsqueeze(1)
    div_term = (torch.arange(0, d_model, 2).float() * -(math.log(10000.0) / d_model)).exp()
    w[:, 0::2] = torch.sin(position * div_term)
    w[:, 1::2] = torch.cos(position * div_term)
    return w
