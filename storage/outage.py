"""A database outage told in two lines per process: one when it starts, one when it ends.

Every thread of a worker meets the same outage (the main thread's take or tell, a trial's
heartbeat, a finaliser's lease renewal); each reports its failures and successes here, and
only the first failure and the first success after it are printed (on stderr):

    warning: database unavailable (<the driver's reason>); retrying for up to 60 s
    database back after 7.9 s; continuing

An outage that outlasts the wait ends the command with one ``error:`` line and exit code 3
(:class:`storage.exceptions.DatabaseUnreachableError`).
"""

from __future__ import annotations

import sys
import threading
import time

from storage.faults import root_cause

WINDOW_S = 60.0  # how long commands wait for the database by default (storage/rdb.py)


class Outage:
    """The process's view of the database: reachable, or unreachable since a moment."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since: float | None = None

    def failed(self, exc: BaseException, window_s: float = WINDOW_S) -> None:
        """A call failed for want of the database: the first one of an outage is printed,
        with how long its caller waits (a background action: the default wait)."""
        with self._lock:
            if self._since is not None:
                return
            self._since = time.monotonic()
        reason = root_cause(exc)
        _say(f"warning: database unavailable ({reason}); retrying for up to {window_s:.0f} s")

    def recovered(self) -> None:
        """A call succeeded: the end of an outage, if one was under way, is printed."""
        if self._since is None:  # the common case, without the lock
            return
        with self._lock:
            if self._since is None:
                return
            lasted, self._since = time.monotonic() - self._since, None
        _say(f"database back after {lasted:.1f} s; continuing")

    def given_up(self) -> None:
        """The caller stops waiting (its error line follows): no recovery line is owed."""
        with self._lock:
            self._since = None


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


OUTAGE = Outage()
