"""The Kronos backend: two-stage evaluator (docs/design-notes.md) and its honest search space."""

from __future__ import annotations

from objectives.disk_cache import DiskCache
from objectives.kronos.evaluator import KronosBackend, KronosEvaluator
from objectives.kronos.space import KronosSettings, KronosSpace

__all__ = ["SPACE", "KronosBackend", "KronosEvaluator", "KronosSettings", "KronosSpace", "load"]


#: the search space and settings type, usable without loading the model
SPACE = KronosSpace()


def load(
    checkpoint: str | None = None,
    tokenizer: str | None = None,
    device: str = "cpu",
    disk_cache: DiskCache | None = None,
) -> KronosBackend:
    """Load Kronos (``None``: ``NeoQuasar/Kronos-base`` + ``NeoQuasar/Kronos-Tokenizer-base``)."""
    from models.kronos import load_kronos

    return KronosBackend(load_kronos(checkpoint, tokenizer, device), device, disk_cache=disk_cache)
