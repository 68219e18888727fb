"""Storage URLs: the SQLite default, PostgreSQL through psycopg 3, and redaction for display."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from storage.exceptions import StorageError

DEFAULT_STORAGE = "sqlite:///studies.db"
STORAGE_ENV = "OPTIMISE_STORAGE"


def storage_url(explicit: str | None = None) -> str:
    """``--storage``, else ``$OPTIMISE_STORAGE``, else ``sqlite:///studies.db``; normalised."""
    raw = explicit or os.environ.get(STORAGE_ENV) or DEFAULT_STORAGE
    return normalise(raw)


#: query parameters that carry secrets (libpq and psycopg spellings)
SECRET_QUERY_KEYS = frozenset({"password", "sslpassword", "passfile", "sslkey", "sslcert"})


def normalise(raw: str) -> str:
    """Check the URL and route PostgreSQL through psycopg 3 (``postgresql+psycopg``).

    Error messages never quote the URL itself: it may hold a password."""
    _, sep, rest = raw.partition("://")
    if sep and rest.split("/", 1)[0].count("@") > 1:
        raise StorageError(
            "the storage URL's user or password contains '@': percent-encode it as %40 "
            "(e.g. postgresql+psycopg://user:p%40ss@host/db)"
        )
    try:
        url = make_url(raw)
    except ArgumentError:
        raise StorageError(
            "the storage URL (--storage or $OPTIMISE_STORAGE) is not a database URL "
            "(e.g. sqlite:///studies.db or postgresql+psycopg://user@host/db)"
        ) from None
    backend = url.get_backend_name()
    if backend == "postgresql":
        if url.drivername in ("postgresql", "postgres", "postgresql+psycopg2"):
            url = url.set(drivername="postgresql+psycopg")
    elif backend == "sqlite":
        database = url.database or ""
        if database and database != ":memory:":
            parent = Path(database).expanduser().resolve().parent
            if not parent.is_dir():
                raise StorageError(f"storage folder {parent} does not exist")
    else:
        raise StorageError(f"storage {backend!r} is not supported; use sqlite or postgresql")
    return url.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL (``None`` for in-memory or non-SQLite)."""
    parsed: URL = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).expanduser().resolve()


def redact(url: str) -> str:
    """The URL with any password masked (userinfo and secret query parameters such as
    ``?password=``), safe to print, log and export."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "(unparsable storage URL)"
    query = {
        key: ("REDACTED" if key.lower() in SECRET_QUERY_KEYS else value)
        for key, value in parsed.query.items()
    }
    return parsed.set(query=query).render_as_string(hide_password=True)
