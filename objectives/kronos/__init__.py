"""The Kronos backend: two-stage evaluator (docs/design-notes.md) and its honest search space."""

from __future__ import annotations

from objectives.kronos.evaluator import KronosBackend, KronosEvaluator, check_config
from objectives.kronos.space import KronosSpace

__all__ = ["KronosBackend", "KronosEvaluator", "KronosSpace", "check_config", "load"]


def load(
    checkpoint: str | None = None, tokenizer: str | None = None, device: str = "cpu"
) -> KronosBackend:
    """Load Kronos (``None``: ``NeoQuasar/Kronos-base`` + ``NeoQuasar/Kronos-Tokenizer-base``)."""
    from models.kronos import load_kronos

    return KronosBackend(load_kronos(checkpoint, tokenizer, device), device)
