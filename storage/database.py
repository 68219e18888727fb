"""One handle per process on the study database: the parsed URL, Optuna's storage, our ledger.

Invariants:

* the storage URL is parsed once (:func:`storage.urls.resolve`); :attr:`Database.label`, its
  redacted form, is what every message, study attr and exported record shows;
* one SQLAlchemy engine per process, Optuna's (``RDBStorage.engine``, hardened and sized in
  ``storage/engine.py``); the ledger runs on it, so no process opens a second pool on the same
  database;
* a SQLite file is checked to be one before a driver opens it, and its identity is kept
  (:attr:`Database.sqlite_file`) so a worker notices it deleted, replaced or truncated.
"""

from __future__ import annotations

from pathlib import Path

from optuna.storages import RDBStorage
from sqlalchemy.engine import URL, Engine

from storage.ledger import Ledger
from storage.rdb import GRACE_PERIOD_S, HEARTBEAT_INTERVAL_S, MAX_RETRY, OUTAGE_S, open_storage
from storage.sqlite_file import SqliteFile, check_is_sqlite
from storage.urls import is_sqlite, redact, resolve, sqlite_path


class Database:
    """Optuna's RDB storage (:attr:`optuna`) and our ledger (:attr:`ledger`) on one engine."""

    def __init__(self, url: URL, optuna: RDBStorage) -> None:
        self.url = url
        self.label = redact(url)
        self.sqlite_path: Path | None = sqlite_path(url)
        self.optuna = optuna
        self.ledger = Ledger(optuna.engine, self.sqlite_path)  # its tables: the file exists
        self.sqlite_file: SqliteFile | None = (
            None if self.sqlite_path is None else SqliteFile.open(self.sqlite_path)
        )

    @classmethod
    def open(
        cls,
        url: URL | str | None = None,
        *,
        heartbeat_interval: int = HEARTBEAT_INTERVAL_S,
        grace_period: int = GRACE_PERIOD_S,
        max_retry: int = MAX_RETRY,
        outage_s: float = OUTAGE_S,
    ) -> Database:
        """Open the database at ``url`` (parsed already, or text: ``--storage``; ``None``: the
        environment or the default), waiting out an outage as
        :func:`storage.rdb.open_storage` does."""
        parsed = url if isinstance(url, URL) else resolve(url)
        path = sqlite_path(parsed)
        if path is not None:
            check_is_sqlite(path)
        storage = open_storage(
            parsed,
            heartbeat_interval=heartbeat_interval,
            grace_period=grace_period,
            max_retry=max_retry,
            outage_s=outage_s,
        )
        return cls(parsed, storage)

    @property
    def engine(self) -> Engine:
        """The process's one engine (Optuna's)."""
        return self.optuna.engine

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.url)

    def dispose(self) -> None:
        """Close the engine's pooled connections (a later call opens new ones)."""
        self.optuna.remove_session()
        self.optuna.engine.dispose()
