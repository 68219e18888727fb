"""The package's one error base: a problem the user can fix, told in one line.

Each floor raises its own subclass (``models.exceptions.CheckpointError``,
``objectives.exceptions.DataError``, ``storage.exceptions.StorageError``,
``studies.exceptions.StudyError``); the command line catches :class:`OptimiseError` alone and
prints ``error: <message>``. This module imports nothing, so every floor may import it
(docs/architecture.md).
"""

from __future__ import annotations


class OptimiseError(ValueError):
    """Bad input or an unusable resource; the message is one line that says what to fix."""
