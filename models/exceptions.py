"""Errors raised while resolving or loading checkpoints."""

from __future__ import annotations

from errors import OptimiseError


class CheckpointError(OptimiseError):
    """A checkpoint is missing, malformed, or does not match the architecture."""


class DeviceError(OptimiseError):
    """A torch device that is not a device, or that this torch build or machine lacks."""
