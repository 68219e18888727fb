"""The Kronos backend: two-stage evaluator (docs/design-notes.md) and its honest search space.

Importing the package is cheap (its registry entry, :mod:`objectives.kronos.spec`, is read
without the model); the names below are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from objectives.registry import lazy_attributes

if TYPE_CHECKING:
    from objectives.disk_cache import DiskCache
    from objectives.kronos.evaluator import KronosBackend, KronosEvaluator
    from objectives.kronos.space import KronosSettings, KronosSpace

__all__ = ["SPACE", "KronosBackend", "KronosEvaluator", "KronosSettings", "KronosSpace", "load"]

_LAZY = {
    "KronosBackend": "objectives.kronos.evaluator",
    "KronosEvaluator": "objectives.kronos.evaluator",
    "KronosSettings": "objectives.kronos.space",
    "KronosSpace": "objectives.kronos.space",
}

__getattr__ = lazy_attributes(__name__, _LAZY)


def load(
    checkpoint: str | None = None,
    tokenizer: str | None = None,
    device: str = "cpu",
    disk_cache: DiskCache | None = None,
) -> KronosBackend:
    """Load Kronos (``None``: ``NeoQuasar/Kronos-base`` + ``NeoQuasar/Kronos-Tokenizer-base``)."""
    from models.kronos import load_kronos
    from objectives.kronos.evaluator import KronosBackend

    return KronosBackend(load_kronos(checkpoint, tokenizer, device), device, disk_cache=disk_cache)
