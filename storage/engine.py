"""SQLAlchemy engine settings that make Optuna's RDB storage safe under concurrency.

* SQLite: WAL, a long busy timeout and SQLAlchemy's documented ``BEGIN IMMEDIATE`` recipe, so
  several local processes never pick up the same waiting trial (SQLite ignores ``FOR UPDATE``).
* PostgreSQL: ``pool_pre_ping`` and a small pool per worker.

There is one engine per process, Optuna's (``RDBStorage.engine``); our ledger shares it
(``storage/database.py``), so these settings are the whole process's.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Engine

from storage.urls import is_sqlite

SQLITE_BUSY_TIMEOUT_S = 120.0

#: Connections one worker process holds at once on PostgreSQL, at most 4: the main thread 2 (the
#: budget lock's ``pg_advisory_xact_lock`` keeps its transaction open while one Optuna or ledger
#: call runs inside it), a trial's heartbeat thread 1 and a finalisation lease-renewal thread 1
#: (``studies/periodic.py``); Optuna opens a session per call and closes it, so a thread outside
#: the budget lock holds one connection at a time. ``POOL_SIZE`` keeps those 4 open between
#: calls; the overflow is headroom. The cap, 6, is below the 8 of the two engines (Optuna's and
#: the ledger's, 2 + 2 each) that one process used to open.
POOL_SIZE = 4
MAX_OVERFLOW = 2


def engine_kwargs(url: URL) -> dict[str, Any]:
    """Keyword arguments for Optuna's ``engine_kwargs`` (the process's only engine)."""
    if is_sqlite(url):
        return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
    return {
        "pool_pre_ping": True,
        "pool_size": POOL_SIZE,
        "max_overflow": MAX_OVERFLOW,
        "pool_recycle": 1800,
    }


def harden(engine: Engine) -> Engine:
    """Apply the SQLite recipe to ``engine`` (no-op for other databases)."""
    if engine.dialect.name != "sqlite":
        return engine

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let SQLAlchemy emit BEGIN itself
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")  # WAL: safe against crashes, fewer fsyncs
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    engine.dispose()  # connections opened before the listeners existed are dropped
    return engine
