"""Errors from storage URLs, the database and the JSON store."""

from __future__ import annotations

from errors import OptimiseError


class StorageError(OptimiseError):
    """A storage URL or store folder that cannot be used; the message says what to do."""
