"""Errors for bad user input (data files, symbols, windows, parameters)."""

from __future__ import annotations


class DataError(ValueError):
    """Input data or arguments that cannot be used; the message says what to fix."""
