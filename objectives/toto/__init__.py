"""The Toto backend: two-stage evaluator (docs/design-notes.md), aggregation specs, search space.

Importing the package is cheap (its registry entry, :mod:`objectives.toto.spec`, is read
without the model); the names below are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from objectives.registry import lazy_attributes

if TYPE_CHECKING:
    from objectives.disk_cache import DiskCache
    from objectives.toto.aggregation import Aggregate, aggregate, parse
    from objectives.toto.evaluator import TotoBackend, TotoEvaluator
    from objectives.toto.space import TotoSettings, TotoSpace

__all__ = [
    "SPACE",
    "Aggregate",
    "TotoBackend",
    "TotoEvaluator",
    "TotoSettings",
    "TotoSpace",
    "aggregate",
    "load",
    "parse",
]

_LAZY = {
    "Aggregate": "objectives.toto.aggregation",
    "aggregate": "objectives.toto.aggregation",
    "parse": "objectives.toto.aggregation",
    "TotoBackend": "objectives.toto.evaluator",
    "TotoEvaluator": "objectives.toto.evaluator",
    "TotoSettings": "objectives.toto.space",
    "TotoSpace": "objectives.toto.space",
}

__getattr__ = lazy_attributes(__name__, _LAZY)


def load(
    checkpoint: str | None = None, device: str = "cpu", disk_cache: DiskCache | None = None
) -> TotoBackend:
    """Load Toto (``None``: ``Datadog/Toto-Open-Base-1.0``)."""
    from models.checkpoint import identity
    from models.toto import DEFAULT_CHECKPOINT, load_model
    from objectives.toto.evaluator import TotoBackend

    model_id = str(checkpoint) if checkpoint is not None else DEFAULT_CHECKPOINT
    model = load_model(model_id, device=device)
    return TotoBackend(model, identity(model_id), device, disk_cache=disk_cache)
