"""Storage URLs: defaults, psycopg 3 routing, redaction, refusals."""

from __future__ import annotations

import pytest

from storage.exceptions import StorageError
from storage.urls import redact, resolve, storage_url


def test_the_default_is_sqlite_unless_the_environment_says_otherwise(monkeypatch) -> None:
    monkeypatch.delenv("OPTIMISE_STORAGE", raising=False)
    assert storage_url() == "sqlite:///studies.db"
    monkeypatch.setenv("OPTIMISE_STORAGE", "postgresql://u@h/db")
    assert storage_url() == "postgresql+psycopg://u@h/db"
    assert storage_url("sqlite:///other.db") == "sqlite:///other.db"


def test_passwords_never_appear_in_redacted_urls() -> None:
    url = storage_url("postgresql://user:s3cret@db.example/optuna")
    assert "s3cret" in url
    assert "s3cret" not in redact(resolve(url))
    assert redact(resolve(url)).startswith("postgresql+psycopg://user:***@")


@pytest.mark.parametrize("bad", ["mysql://u@h/db", "nonsense", "sqlite:////no/such/dir/x.db"])
def test_unusable_urls_are_refused(bad: str) -> None:
    with pytest.raises(StorageError):
        storage_url(bad)
