"""The Kronos backend: two-stage evaluator (docs/design-notes.md) and its honest search space.

Importing the package is cheap (its registry entry, :mod:`objectives.kronos.spec`, is read
without the model); the names below are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    if name == "SPACE":  # the search space and settings type, usable without loading the model
        from objectives.kronos.spec import space

        return space()
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
