"""Errors raised while resolving or loading checkpoints."""

from __future__ import annotations


class CheckpointError(ValueError):
    """A checkpoint is missing, malformed, or does not match the architecture."""
