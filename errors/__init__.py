"""The package's one error base: a problem the user can fix, told in one line.

Each floor raises its own subclass (``models.exceptions.CheckpointError``,
``objectives.exceptions.DataError``, ``storage.exceptions.StorageError``,
``studies.exceptions.StudyError``); the command line catches :class:`OptimiseError` alone and
prints ``error: <message>``, exiting with the error's :attr:`~OptimiseError.exit_code`. This
module imports nothing, so every floor may import it (docs/architecture.md).
"""

from __future__ import annotations

EXIT_USAGE = 2  # bad input or an unusable resource: fix what the line says
EXIT_UNREACHABLE = 3  # the database did not answer: nothing to fix here, run it again later


class OptimiseError(ValueError):
    """Bad input or an unusable resource; the message is one line that says what to fix."""

    exit_code: int = EXIT_USAGE
