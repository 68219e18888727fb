"""Errors a user can act on when opening or running a study."""

from __future__ import annotations


class StudyError(ValueError):
    """A study cannot be resumed or run as asked; the message says why and what to do."""
