"""The Kronos tokenizer: bars (B, T, d_in) <-> pairs of token indices (s1, s2).

The encoder maps each normalised bar to ``s1_bits + s2_bits`` signs (binary spherical
quantisation); the first ``s1_bits`` signs form the coarse index ``s1``, the rest the fine index
``s2`` (bit ``j`` of an index is sign ``j`` of its half, least significant first). The decoder
turns a window of indices back into bars; it is causal, so the bar at the last position can be
decoded from cached keys and values of the positions before it (:meth:`decode_next`).
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from models.kronos.config import TokenizerConfig
from models.kronos.layers import KV, Block
from models.threads import one_thread


class _BSQBuffers(nn.Module):
    """Holds the quantiser's persistent buffers, present in the published files."""

    def __init__(self, codebook_dim: int, group_size: int) -> None:
        super().__init__()
        self.register_buffer("basis", 2 ** torch.arange(codebook_dim - 1, -1, -1))
        self.register_buffer("group_basis", 2 ** torch.arange(group_size - 1, -1, -1))


class _Quantizer(nn.Module):
    def __init__(self, config: TokenizerConfig) -> None:
        super().__init__()
        self.bsq = _BSQBuffers(config.codebook_dim, config.group_size)


class KronosTokenizer(nn.Module):
    _bit_values: torch.Tensor  # a buffer (``nn.Module.__getattr__`` types it Tensor | Module)

    def __init__(self, config: TokenizerConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.embed = nn.Linear(c.d_in, c.d_model)
        self.head = nn.Linear(c.d_model, c.d_in)
        # upstream builds n_layers - 1 blocks on each side
        self.encoder = nn.ModuleList(
            Block(c.d_model, c.n_heads, c.ff_dim) for _ in range(c.n_enc_layers - 1)
        )
        self.decoder = nn.ModuleList(
            Block(c.d_model, c.n_heads, c.ff_dim) for _ in range(c.n_dec_layers - 1)
        )
        self.quant_embed = nn.Linear(c.d_model, c.codebook_dim)
        self.post_quant_embed_pre = nn.Linear(c.s1_bits, c.d_model)  # training only
        self.post_quant_embed = nn.Linear(c.codebook_dim, c.d_model)
        self.tokenizer = _Quantizer(c)
        self.register_buffer(
            "_bit_values", 2 ** torch.arange(c.s1_bits, dtype=torch.long), persistent=False
        )

    # --- encode -----------------------------------------------------------------------------

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised bars (B, T, d_in) -> (s1, s2) indices, each (B, T) int64."""
        z = self.embed(x)  # (B, T, C)
        for block in self.encoder:
            z, _ = block(z)
        z = F.normalize(self.quant_embed(z), dim=-1)  # (B, T, s1_bits + s2_bits)
        bits = (z > 0).long()  # a sign of +1 is bit 1
        s1 = (bits[..., : self.config.s1_bits] * self._bit_values).sum(-1)  # (B, T)
        s2 = (bits[..., self.config.s1_bits :] * self._bit_values).sum(-1)  # (B, T)
        return s1, s2

    # --- decode -----------------------------------------------------------------------------

    def _codes(self, s1: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
        """(…) index pairs -> (…, C) decoder inputs."""
        high = (s1.unsqueeze(-1) & self._bit_values) != 0  # (…, s1_bits)
        low = (s2.unsqueeze(-1) & self._bit_values) != 0  # (…, s2_bits)
        bits = torch.cat([high, low], dim=-1)  # (…, s1_bits + s2_bits)
        codes = (bits.float() * 2 - 1) * (1.0 / self.config.codebook_dim**0.5)
        return self.post_quant_embed(codes)

    def decode(self, s1: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
        """(B, T) index pairs -> normalised bars (B, T, d_in)."""
        z = self._codes(s1, s2)  # (B, T, C)
        for block in self.decoder:
            z, _ = block(z)
        return self.head(z)

    def decode_prefix(self, s1: torch.Tensor, s2: torch.Tensor) -> list[KV]:
        """Keys and values of every decoder block for (B, P) index pairs (P may be 0)."""
        z = self._codes(s1, s2)  # (B, P, C)
        cache = []
        for block in self.decoder:
            if z.shape[1] == 0:
                attn = cast(Block, block).self_attn  # nn.ModuleList's items are typed Module
                empty = z.new_zeros(z.shape[0], attn.n_heads, 0, attn.head_dim)
                cache.append(KV(empty, empty))
                continue
            z, kv = block(z)
            cache.append(kv)
        return cache

    def decode_next(self, prefix: list[KV], s1: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
        """Bars (B, M, d_in) for M alternative next tokens (B, M) after each of B prefixes.

        ``prefix`` comes from :meth:`decode_prefix`; each candidate sees the prefix and itself.
        The bar head runs on one thread: a product with ``d_in`` (6) output columns and fewer
        rows than that is one whose last bits MKL makes depend on the thread count
        (:mod:`models.threads`).
        """
        z = self._codes(s1, s2)  # (B, M, C)
        for block, kv in zip(self.decoder, prefix, strict=True):
            z, _ = block(z, kv, alternatives=True)
        with one_thread():
            return self.head(z)

    def decode_paths(self, prefix: list[KV], s1: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
        """Bars (B, H, d_in) of B alternative H-token continuations (B, H) of one prefix.

        ``prefix`` comes from :meth:`decode_prefix` of a batch of one; each continuation sees
        the prefix and its own earlier tokens (causal), as decoding the whole window would.
        """
        B = s1.shape[0]
        z = self._codes(s1, s2)  # (B, H, C)
        for block, kv in zip(self.decoder, prefix, strict=True):
            shape = (B, *kv.k.shape[1:])
            z, _ = block(z, KV(kv.k.expand(shape), kv.v.expand(shape)))
        with one_thread():
            return self.head(z)
