"""Errors raised while resolving or loading checkpoints."""

from __future__ import annotations

from errors import OptimiseError


class CheckpointError(OptimiseError):
    """A checkpoint is missing, malformed, or does not match the architecture."""
