"""Errors from storage URLs, the database and the JSON store."""

from __future__ import annotations

from errors import EXIT_UNREACHABLE, OptimiseError


class StorageError(OptimiseError):
    """A storage URL or store folder that cannot be used; the message says what to do."""


class DatabaseUnreachableError(StorageError):
    """The database stayed unreachable for the whole outage window (refused or dropped
    connections): not a user mistake, so a distinct exit code (3). The studies are intact;
    running the same command again resumes."""

    exit_code = EXIT_UNREACHABLE
