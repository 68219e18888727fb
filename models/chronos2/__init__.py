"""Chronos-2 (``amazon/chronos-2``) through the ``chronos-forecasting`` package: loading a
safetensors checkpoint offline, and random-weight checkpoints for tests and the quickstart."""

from __future__ import annotations

from models.chronos2.loading import (
    DEFAULT_CHECKPOINT,
    PRESETS,
    load_pipeline,
    random_pipeline,
    write_random_checkpoint,
)

__all__ = [
    "DEFAULT_CHECKPOINT",
    "PRESETS",
    "load_pipeline",
    "random_pipeline",
    "write_random_checkpoint",
]
