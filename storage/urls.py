"""Storage URLs: the SQLite default, PostgreSQL through psycopg 3, and redaction for display.

A storage URL is parsed once, by :func:`parse` (the only ``make_url`` call of ours); everything
else takes the parsed :class:`~sqlalchemy.engine.URL`. Whatever shows or records a URL uses
:func:`redact`; only drivers get :func:`render`, password included.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from storage.exceptions import StorageError

DEFAULT_STORAGE = "sqlite:///studies.db"
STORAGE_ENV = "OPTIMISE_STORAGE"


def resolve(explicit: str | None = None) -> URL:
    """``--storage``, else ``$OPTIMISE_STORAGE``, else ``sqlite:///studies.db``; parsed,
    checked and normalised (:func:`parse`)."""
    return parse(explicit or os.environ.get(STORAGE_ENV) or DEFAULT_STORAGE)


def storage_url(explicit: str | None = None) -> str:
    """:func:`resolve` as text, password included: for drivers, never for display."""
    return render(resolve(explicit))


#: query parameters that carry secrets (libpq and psycopg spellings)
SECRET_QUERY_KEYS = frozenset({"password", "sslpassword", "passfile", "sslkey", "sslcert"})


def parse(raw: str) -> URL:
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
    return url


def render(url: URL) -> str:
    """The URL as text with its password, for a driver (Optuna's ``RDBStorage`` takes text)."""
    return url.render_as_string(hide_password=False)


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def sqlite_path(url: URL) -> Path | None:
    """The database file of a SQLite URL (``None`` for in-memory or non-SQLite)."""
    if not is_sqlite(url) or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).expanduser().resolve()


def redact(url: URL) -> str:
    """The URL with any password masked (userinfo and secret query parameters such as
    ``?password=``), safe to print, log and export."""
    query = {
        key: ("REDACTED" if key.lower() in SECRET_QUERY_KEYS else value)
        for key, value in url.query.items()
    }
    return url.set(query=query).render_as_string(hide_password=True)
