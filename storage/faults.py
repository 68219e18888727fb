"""Database errors told apart: transient outages to ride out, permanent ones to report at once.

Optuna wraps SQLAlchemy errors in ``StorageInternalError`` with a generic message ("invalid
data in the commit, e.g. exceeding max length") that hides the cause; :func:`root_cause` digs
out the driver's own first line. A wrong password, a missing database or role will not heal by
waiting, so :func:`is_permanent` lets callers fail at once with that line instead of retrying.
"""

from __future__ import annotations

import optuna
from sqlalchemy.exc import DBAPIError, OperationalError

DB_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    DBAPIError,
    optuna.exceptions.StorageInternalError,
)

PERMANENT_MARKERS = (
    "password authentication failed",
    "authentication failed",
    "no password supplied",
    "does not exist",  # database "x" / role "y" does not exist
    "permission denied",
    "pg_hba.conf",
    "invalid dsn",
    "unable to open database file",
    "readonly database",
    "file is not a database",  # SQLite: the --storage file holds something else
    "database disk image is malformed",  # SQLite: the file was truncated or damaged
)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = getattr(current, "orig", None) or current.__cause__ or current.__context__
    return seen


def root_cause(exc: BaseException) -> str:
    """The first line of the driver's own error in ``exc``'s chain (psycopg, sqlite3), else
    of the deepest error with a message."""
    chain = _chain(exc)
    drivers = [e for e in chain if type(e).__module__.split(".")[0] in ("psycopg", "sqlite3")]
    for error in [*drivers, *reversed(chain)]:
        text = str(error).strip()
        if text.strip("()[]' ,"):
            return f"{type(error).__name__}: {text.splitlines()[0]}"
    return type(exc).__name__


def is_db_error(exc: BaseException) -> bool:
    return any(isinstance(error, DB_ERRORS) for error in _chain(exc))


def is_outage(exc: BaseException) -> bool:
    """A database that does not answer (refused or dropped connections, a lock never freed):
    waiting may fix it, and an error that outlives the wait is reported as unreachable."""
    return not is_permanent(exc) and any(
        isinstance(error, OperationalError) or type(error).__name__ == "OperationalError"
        for error in _chain(exc)
    )


def is_permanent(exc: BaseException) -> bool:
    """A database error that waiting will not fix (credentials, missing database or role)."""
    text = " ".join(str(error).lower() for error in _chain(exc))
    return any(marker in text for marker in PERMANENT_MARKERS)
