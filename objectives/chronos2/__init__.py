"""The Chronos-2 backend: deterministic two-stage evaluator (docs/design-notes.md), its space."""

from __future__ import annotations

from objectives.chronos2.evaluator import Chronos2Backend, Chronos2Evaluator, level_weights
from objectives.chronos2.space import Chronos2Settings, Chronos2Space
from objectives.disk_cache import DiskCache

__all__ = [
    "SPACE",
    "Chronos2Backend",
    "Chronos2Evaluator",
    "Chronos2Settings",
    "Chronos2Space",
    "level_weights",
    "load",
]

#: the search space and settings type, usable without loading the model
SPACE = Chronos2Space()


def load(
    checkpoint: str | None = None,
    tokenizer: str | None = None,
    device: str = "cpu",
    disk_cache: DiskCache | None = None,
) -> Chronos2Backend:
    """Load Chronos-2 (``None``: ``amazon/chronos-2``); ``tokenizer`` is unused."""
    from models.checkpoint import identity
    from models.chronos2 import DEFAULT_CHECKPOINT, load_pipeline

    model_id = str(checkpoint) if checkpoint is not None else DEFAULT_CHECKPOINT
    pipeline = load_pipeline(model_id, device=device)
    return Chronos2Backend(pipeline, identity(model_id), device, disk_cache=disk_cache)
