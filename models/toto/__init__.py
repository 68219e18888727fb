"""Toto (``Datadog/Toto-Open-Base-1.0``) in pure PyTorch, inference only."""

from __future__ import annotations

from pathlib import Path

from models.toto.config import TotoConfig
from models.toto.distribution import Mixture, sample_mixtures
from models.toto.loading import DEFAULT_CHECKPOINT, load_model, random_model, write_model
from models.toto.model import NextPatch, TotoModel, left_pad

__all__ = [
    "DEFAULT_CHECKPOINT",
    "PRESETS",
    "Mixture",
    "NextPatch",
    "TotoConfig",
    "TotoModel",
    "left_pad",
    "load_model",
    "random_model",
    "sample_mixtures",
    "write_random_checkpoint",
]

PRESETS: dict[str, TotoConfig] = {
    # small enough for fast tests, with the real patch size and one space-wise layer
    "tiny": TotoConfig(
        embed_dim=32,
        num_layers=2,
        num_heads=2,
        mlp_hidden_dim=64,
        dropout=0.0,
        spacewise_every_n_layers=2,
        output_distribution_kwargs={"k_components": 8},
    ),
    # Toto-Open-Base-1.0 as published
    "base": TotoConfig(),
}


def write_random_checkpoint(out: Path, preset: str, seed: int) -> None:
    """Write ``config.json`` + ``model.safetensors`` of a random ``preset`` model to ``out``,
    in the published format (fused feed-forward keys)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown Toto preset {preset!r}; choose from {', '.join(PRESETS)}")
    write_model(random_model(PRESETS[preset], seed), Path(out))
