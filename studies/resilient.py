"""The retry policy of storage calls during a database outage, shared by the trial paths
(:mod:`studies.worker`) and finalisation (:mod:`studies.finalise`, :mod:`studies.publish`).

Transient database errors are retried with back-off (0.25 s doubling to 5 s) for up to
``outage_s`` seconds: one warning naming the cause when the outage starts, one line when it
ends, whichever thread meets it (:data:`storage.outage.OUTAGE`); past the wait,
:class:`DatabaseUnreachableError` (exit code 3). Permanent errors (credentials, a missing
database, a damaged SQLite file) fail at once. Every call given to :class:`Retry` must be
idempotent: ``docs/design-notes.md``, "Retried writes", says why each one is.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from storage.exceptions import DatabaseUnreachableError
from storage.faults import DB_ERRORS, is_permanent, root_cause
from storage.outage import OUTAGE, WINDOW_S
from storage.sqlite_file import SqliteFile
from studies.exceptions import StudyError

T = TypeVar("T")

FIRST_DELAY_S = 0.25
MAX_DELAY_S = 5.0


@dataclass(frozen=True)
class Retry:
    """How long a storage call waits out a database outage, and the SQLite file to check."""

    outage_s: float = WINDOW_S
    #: the SQLite file the study lives in (``Database.sqlite_file``): a deleted or replaced
    #: file explains a database error better than the error does
    database_file: SqliteFile | None = None

    def __call__(self, call: Callable[[], T]) -> T:
        """Run ``call`` (idempotent), retrying transient database errors as the module says."""
        started = time.monotonic()
        delay = FIRST_DELAY_S
        while True:
            try:
                result = call()
            except DB_ERRORS as exc:
                self.check_file()
                if is_permanent(exc):
                    raise StudyError(f"database error: {root_cause(exc)}") from None
                if time.monotonic() + delay > started + self.outage_s:
                    OUTAGE.given_up()
                    raise DatabaseUnreachableError(
                        f"lost the database for over {self.outage_s:.0f} s "
                        f"({root_cause(exc)}); the study is intact: launch again to resume"
                    ) from None
                OUTAGE.failed(exc, self.outage_s)
                time.sleep(delay)
                delay = min(delay * 2, MAX_DELAY_S)
                continue
            OUTAGE.recovered()
            return result

    def check_file(self) -> None:
        """Raise if the SQLite file was deleted, replaced or truncated."""
        if self.database_file is not None:
            self.database_file.check()
