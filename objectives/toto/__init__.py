"""The Toto backend: two-stage evaluator (docs/design-notes.md), aggregation specs, search space."""

from __future__ import annotations

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


#: the search space and settings type, usable without loading the model
SPACE = TotoSpace()


def load(
    checkpoint: str | None = None,
    tokenizer: str | None = None,
    device: str = "cpu",
    disk_cache: DiskCache | None = None,
) -> TotoBackend:
    """Load Toto (``None``: ``Datadog/Toto-Open-Base-1.0``); ``tokenizer`` is unused."""
    from models.checkpoint import identity
    from models.toto import DEFAULT_CHECKPOINT, load_model

    model_id = str(checkpoint) if checkpoint is not None else DEFAULT_CHECKPOINT
    model = load_model(model_id, device=device)
    return TotoBackend(model, identity(model_id), device, disk_cache=disk_cache)
