"""Errors for bad user input (data files, symbols, windows, parameters)."""

from __future__ import annotations

from errors import OptimiseError


class DataError(OptimiseError):
    """Input data or arguments that cannot be used; the message says what to fix."""
