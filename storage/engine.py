"""SQLAlchemy engine settings that make Optuna's RDB storage safe under concurrency.

* SQLite: WAL, a long busy timeout and SQLAlchemy's documented ``BEGIN IMMEDIATE`` recipe, so
  several local processes never pick up the same waiting trial (SQLite ignores ``FOR UPDATE``).
* PostgreSQL: ``pool_pre_ping`` and a small pool per worker.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy
from sqlalchemy import event
from sqlalchemy.engine import Engine

from storage.urls import is_sqlite

SQLITE_BUSY_TIMEOUT_S = 120.0


def engine_kwargs(url: str) -> dict[str, Any]:
    """Keyword arguments for ``create_engine`` (and Optuna's ``engine_kwargs``)."""
    if is_sqlite(url):
        return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
    return {"pool_pre_ping": True, "pool_size": 2, "max_overflow": 2, "pool_recycle": 1800}


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


def create_engine(url: str) -> Engine:
    """A hardened engine for our own ledger tables."""
    return harden(sqlalchemy.create_engine(url, **engine_kwargs(url)))
