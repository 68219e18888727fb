"""The Chronos-2 backend: deterministic two-stage evaluator (docs/design-notes.md), its space.

Importing the package is cheap (its registry entry, :mod:`objectives.chronos2.spec`, is read
without the model or the ``chronos`` package); the names below are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from objectives.registry import lazy_attributes

if TYPE_CHECKING:
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

_LAZY = {
    "Chronos2Backend": "objectives.chronos2.evaluator",
    "Chronos2Evaluator": "objectives.chronos2.evaluator",
    "level_weights": "objectives.chronos2.evaluator",
    "Chronos2Settings": "objectives.chronos2.space",
    "Chronos2Space": "objectives.chronos2.space",
}

__getattr__ = lazy_attributes(__name__, _LAZY)


def load(
    checkpoint: str | None = None, device: str = "cpu", disk_cache: DiskCache | None = None
) -> Chronos2Backend:
    """Load Chronos-2 (``None``: ``amazon/chronos-2``)."""
    from models.checkpoint import identity
    from models.chronos2 import DEFAULT_CHECKPOINT, load_pipeline
    from objectives.chronos2.evaluator import Chronos2Backend

    model_id = str(checkpoint) if checkpoint is not None else DEFAULT_CHECKPOINT
    pipeline = load_pipeline(model_id, device=device)
    return Chronos2Backend(pipeline, identity(model_id), device, disk_cache=disk_cache)
