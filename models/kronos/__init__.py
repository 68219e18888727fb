"""Inference-only Kronos (tokenizer + predictor) loading the published checkpoints."""

from __future__ import annotations

from models.kronos.config import PredictorConfig, TokenizerConfig
from models.kronos.loading import (
    DEFAULT_CHECKPOINT,
    DEFAULT_TOKENIZER,
    PRESETS,
    LoadedKronos,
    load_kronos,
    load_predictor,
    load_tokenizer,
    random_models,
    write_random_checkpoint,
)
from models.kronos.model import Kronos
from models.kronos.tokenizer import KronosTokenizer

__all__ = [
    "DEFAULT_CHECKPOINT",
    "DEFAULT_TOKENIZER",
    "PRESETS",
    "Kronos",
    "KronosTokenizer",
    "LoadedKronos",
    "PredictorConfig",
    "TokenizerConfig",
    "load_kronos",
    "load_predictor",
    "load_tokenizer",
    "random_models",
    "write_random_checkpoint",
]
