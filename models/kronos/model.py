"""The Kronos predictor: a causal transformer over (s1, s2) token pairs and time features.

One pass over a context gives the hidden states; the s1 head reads the last one. The s2 head is
conditioned on the chosen s1 through a dependency-aware layer: the s1 embedding queries the
context's hidden states, the answer is added to the last hidden state and normalised. Its keys
and values depend only on the context, so they are computed once (:meth:`dependency_kv`) and
reused for every candidate s1 (:meth:`s2_logits`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from models.kronos.config import PredictorConfig
from models.kronos.layers import KV, Block, CrossAttention, RMSNorm, sinusoid_table

#: time features, in upstream's column order, and their table sizes
TIME_FEATURES = (("minute", 60), ("hour", 24), ("weekday", 7), ("day", 32), ("month", 13))


class HierarchicalEmbedding(nn.Module):
    def __init__(self, config: PredictorConfig) -> None:
        super().__init__()
        self.scale = math.sqrt(config.d_model)
        self.emb_s1 = nn.Embedding(2**config.s1_bits, config.d_model)
        self.emb_s2 = nn.Embedding(2**config.s2_bits, config.d_model)
        self.fusion_proj = nn.Linear(2 * config.d_model, config.d_model)

    def forward(self, s1: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
        """(B, T) pairs -> (B, T, C)."""
        both = torch.cat([self.emb_s1(s1) * self.scale, self.emb_s2(s2) * self.scale], dim=-1)
        return self.fusion_proj(both)


class _FixedEmbedding(nn.Module):
    def __init__(self, n: int, d_model: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(n, d_model)
        self.emb.weight.data.copy_(sinusoid_table(n, d_model))
        self.emb.weight.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.emb(x)


class TemporalEmbedding(nn.Module):
    """Sum of minute, hour, weekday, day and month embeddings (learnt or sinusoidal)."""

    def __init__(self, config: PredictorConfig) -> None:
        super().__init__()
        for name, size in TIME_FEATURES:
            table = (
                nn.Embedding(size, config.d_model)
                if config.learn_te
                else _FixedEmbedding(size, config.d_model)
            )
            self.add_module(f"{name}_embed", table)

    def forward(self, stamp: torch.Tensor) -> torch.Tensor:
        """(B, T, 5) minute, hour, weekday, day, month -> (B, T, C)."""
        x = stamp.long()
        minute, hour, weekday, day, month = (
            getattr(self, f"{name}_embed")(x[:, :, i]) for i, (name, _) in enumerate(TIME_FEATURES)
        )
        return hour + weekday + day + month + minute  # upstream's order of addition


class DependencyAwareLayer(nn.Module):
    def __init__(self, config: PredictorConfig) -> None:
        super().__init__()
        self.cross_attn = CrossAttention(config.d_model, config.dep_heads)
        self.norm = RMSNorm(config.d_model)

    def forward(self, last_hidden: torch.Tensor, s1_embed: torch.Tensor, kv: KV) -> torch.Tensor:
        """(B, C) last hidden states, (B, M, C) s1 embeddings, kv of the B contexts -> (B, M, C)."""
        return self.norm(last_hidden[:, None] + self.cross_attn(s1_embed, kv))


class DualHead(nn.Module):
    def __init__(self, config: PredictorConfig) -> None:
        super().__init__()
        self.proj_s1 = nn.Linear(config.d_model, 2**config.s1_bits)
        self.proj_s2 = nn.Linear(config.d_model, 2**config.s2_bits)


class Kronos(nn.Module):
    def __init__(self, config: PredictorConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.embedding = HierarchicalEmbedding(c)
        self.time_emb = TemporalEmbedding(c)
        self.transformer = nn.ModuleList(
            Block(c.d_model, c.n_heads, c.ff_dim) for _ in range(c.n_layers)
        )
        self.norm = RMSNorm(c.d_model)
        self.dep_layer = DependencyAwareLayer(c)
        self.head = DualHead(c)

    def hidden(self, s1: torch.Tensor, s2: torch.Tensor, stamp: torch.Tensor) -> torch.Tensor:
        """(B, T) pairs and (B, T, 5) time features -> normalised hidden states (B, T, C)."""
        x = self.embedding(s1, s2) + self.time_emb(stamp)
        for block in self.transformer:
            x, _ = block(x)
        return self.norm(x)

    def hidden_cached(
        self,
        s1: torch.Tensor,
        s2: torch.Tensor,
        stamp: torch.Tensor,
        past: list[KV] | None = None,
    ) -> tuple[torch.Tensor, list[KV]]:
        """:meth:`hidden` of (B, T) positions after ``past`` (per block, (B, nh, P, hs)), and
        every block's keys and values of the ``P + T`` positions (of the ``T`` new ones when a
        ``past`` of batch 1 is shared by the B sequences). Attention is causal, so the hidden
        states of a prefix do not depend on what follows it and can be computed once."""
        x = self.embedding(s1, s2) + self.time_emb(stamp)
        caches = []
        for n, block in enumerate(self.transformer):
            x, kv = block(x, None if past is None else past[n])
            caches.append(kv)
        return self.norm(x), caches

    def s1_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """(…, C) -> (…, 2**s1_bits)."""
        return self.head.proj_s1(hidden)

    def dependency_kv(self, hidden: torch.Tensor) -> KV:
        """Keys and values of the s2 layer for (B, T, C) hidden states."""
        return self.dep_layer.cross_attn.keys_values(hidden)

    def s2_logits(self, last_hidden: torch.Tensor, kv: KV, s1: torch.Tensor) -> torch.Tensor:
        """Next-token s2 logits (B, M, 2**s2_bits) for M candidate s1 (B, M) per context.

        ``last_hidden`` (B, C) and ``kv`` (B, nh, T, hs) come from :meth:`hidden` and
        :meth:`dependency_kv`; each candidate is scored as if it were the only one.
        """
        x2 = self.dep_layer(last_hidden, self.embedding.emb_s1(s1), kv)  # (B, M, C)
        return self.head.proj_s2(x2)
