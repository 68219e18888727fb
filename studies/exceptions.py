"""Errors a user can act on when opening or running a study."""

from __future__ import annotations

from errors import OptimiseError


class StudyError(OptimiseError):
    """A study cannot be resumed or run as asked; the message says why and what to do."""
