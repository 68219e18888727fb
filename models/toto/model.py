"""The Toto backbone (inference only): causal patch scaling, patch embedding, a stack of
time-wise / space-wise transformer layers, and the next patch's Student-t mixture.

The model takes and returns tensors; :func:`left_pad` builds its inputs from raw contexts.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from models.toto.config import TotoConfig
from models.toto.distribution import Mixture, MixtureOfStudentTsHead
from models.toto.layers import TransformerLayer
from models.toto.scaler import causal_patch_stats, scale_patches


class NextPatch(NamedTuple):
    """The forecast of the patch after the context, in the scaled space, plus the scaler's
    affine map back to data units: ``value = loc + scale * x``."""

    mixture: Mixture  # each (B, V, patch_size, k)
    loc: torch.Tensor  # (B, V)
    scale: torch.Tensor  # (B, V)

    def step(self, index: int = 0) -> Mixture:
        """The mixture of one step of the next patch, each ``(B, V, k)``."""
        return Mixture(*(t[:, :, index] for t in self.mixture))


class TotoModel(nn.Module):
    """Toto's backbone; ``forward`` predicts the patch that follows the input."""

    def __init__(self, config: TotoConfig) -> None:
        super().__init__()
        self.config = config
        E, P = config.embed_dim, config.patch_size
        self.patch_embed = nn.Linear(P, E)
        self.layers = nn.ModuleList(
            TransformerLayer(config, config.layer_is_spacewise(i)) for i in range(config.num_layers)
        )
        self.unembed = nn.Linear(E, E * P)
        self.head = MixtureOfStudentTsHead(E, config.k_components)

    @torch.no_grad()
    def forward(self, series: torch.Tensor, padding_mask: torch.Tensor) -> NextPatch:
        """``series`` and ``padding_mask`` (True on real values) are ``(B, V, T)``, with ``T``
        a multiple of ``patch_size`` and padding on the left."""
        cfg = self.config
        B, V, T = series.shape
        P, E = cfg.patch_size, cfg.embed_dim
        if T % P:
            raise ValueError(f"series length {T} is not a multiple of the patch size {P}")
        loc, scale = causal_patch_stats(
            series, padding_mask, P, cfg.stabilize_with_global, cfg.scale_factor_exponent
        )  # each (B, V, T // P)
        scaled = scale_patches(series, loc, scale, P)  # (B, V, T)
        x = self.patch_embed(scaled.unflatten(-1, (T // P, P)))  # (B, V, S, E)
        for layer in self.layers:
            x = layer(x)
        last = self.unembed(x[:, :, -1]).view(B, V, P, E)  # (B, V, P, E) next patch's steps
        return NextPatch(self.head(last), loc[..., -1], scale[..., -1])


def left_pad(
    contexts: list[torch.Tensor], patch_size: int, length: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack 1-D contexts into ``(B, 1, T)`` with zeros on the left and the padding mask.

    ``T`` is ``length`` or the longest context rounded up to a multiple of ``patch_size``
    (upstream pads each series the same way). Contexts with different padded lengths give
    different forecasts than alone, because padded patches are attended to: batch only
    contexts whose lengths round up to the same ``T``.
    """
    longest = max(len(c) for c in contexts)
    if length is None:
        length = -(-longest // patch_size) * patch_size
    if length % patch_size or length < longest:
        raise ValueError(f"length {length} must be a multiple of {patch_size} and >= {longest}")
    first = contexts[0]
    series = torch.zeros(len(contexts), 1, length, dtype=first.dtype, device=first.device)
    mask = torch.zeros(len(contexts), 1, length, dtype=torch.bool, device=first.device)
    for row, context in enumerate(contexts):
        if len(context):
            series[row, 0, -len(context) :] = context
            mask[row, 0, -len(context) :] = True
    return series, mask
