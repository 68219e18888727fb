"""The SQLite study file under a running worker: noticed when it is deleted, replaced or cut.

SQLite goes on working on an open file after it is unlinked or renamed over (the worker's
pooled connections hold the old inode), and reads a truncated one as empty or damaged, so a
worker would finish its study into a file nobody will ever read and exit 0 (issue 21, item 4).
:class:`SqliteFile` records the file's device, inode and size when the database is opened;
:meth:`SqliteFile.check`, run on each trial take, raises one :class:`StorageError` line when
the path no longer names that file or the file shrank (SQLite never shrinks a database without
``VACUUM``, which nothing here runs). :func:`check_is_sqlite` refuses a file that is no SQLite
database at all before a driver reports it with its SQL.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from storage.exceptions import StorageError


def check_is_sqlite(path: Path) -> None:
    """Refuse an existing ``path`` that is not an SQLite database (an empty file is one: SQLite
    makes it a new database).

    The header is read through SQLite itself, never with a plain ``open``: closing any
    descriptor of a database file drops every POSIX lock this process holds on it, so a
    process already connected (the API, a second launch in one process) would lose its locks
    and another process could delete the write-ahead log under it (SQLite's "How To Corrupt",
    2.2.1). SQLite shares one descriptor per file among its connections in a process."""
    if not path.exists():
        return
    try:
        probe = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            probe.execute("PRAGMA schema_version").fetchone()
        finally:
            probe.close()
    except sqlite3.DatabaseError as exc:
        code = getattr(exc, "sqlite_errorcode", None)
        if code == sqlite3.SQLITE_NOTADB:
            raise StorageError(
                f"{path} is not a SQLite database (it does not start with SQLite's header); "
                "pass --storage with the study database, or move the file away to start a new "
                "one"
            ) from None
        if code in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM, sqlite3.SQLITE_AUTH):
            raise StorageError(f"cannot read the study database {path}: {exc}") from None
        # anything else (a damaged database) the driver reports when the storage opens it


@dataclass
class SqliteFile:
    """The identity of the database file a worker opened, and the largest size it has seen."""

    path: Path
    device: int
    inode: int
    size: int

    @classmethod
    def open(cls, path: Path) -> SqliteFile:
        """Record ``path`` as it is now (it exists: the database was just opened)."""
        stat = path.stat()
        return cls(path, stat.st_dev, stat.st_ino, stat.st_size)

    def check(self) -> None:
        """Raise :class:`StorageError` when the file was deleted, replaced or truncated since
        it was opened (or last checked); remember its size otherwise."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            raise StorageError(self._lost("was deleted")) from None
        except OSError as exc:
            raise StorageError(self._lost(f"cannot be read ({exc.strerror or exc})")) from None
        if (stat.st_dev, stat.st_ino) != (self.device, self.inode):
            raise StorageError(self._lost("was replaced by another file"))
        if stat.st_size < self.size:
            raise StorageError(self._lost(f"was truncated ({self.size} -> {stat.st_size} bytes)"))
        self.size = stat.st_size

    def _lost(self, what: str) -> str:
        return (
            f"the study database {self.path} {what} while this worker ran; it stops rather "
            "than write trials nobody would read: restore the file (or delete it to start "
            "over) and run the command again"
        )
