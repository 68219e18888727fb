"""One storage handle per process: a launch opens one SQLAlchemy engine, shared by Optuna's
RDB storage and our ledger, on SQLite and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy import event
from sqlalchemy.engine import Engine

from storage.database import Database
from storage.ledger import finalisation
from storage.urls import redact
from tests.conftest import launch_fake


class EngineCount:
    """Engines built (``create_engine`` under any import path) and engines that connected."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.built: list[Engine] = []
        self.connected: set[int] = set()
        real = sqlalchemy.engine.create.create_engine

        def counting(*args: Any, **kwargs: Any) -> Engine:
            engine = real(*args, **kwargs)
            self.built.append(engine)
            return engine

        for module in (sqlalchemy, sqlalchemy.engine, sqlalchemy.engine.create):
            monkeypatch.setattr(module, "create_engine", counting)
        event.listen(Engine, "engine_connect", self._on_connect)

    def _on_connect(self, connection: Any) -> None:
        self.connected.add(id(connection.engine))

    def close(self) -> None:
        event.remove(Engine, "engine_connect", self._on_connect)


@pytest.fixture
def engines(monkeypatch: pytest.MonkeyPatch):
    count = EngineCount(monkeypatch)
    yield count
    count.close()


def launch_opens_one_engine(url: str, data: Path, engines: EngineCount) -> None:
    assert launch_fake(data, 3, "--storage", url) == 0
    assert len(engines.built) == 1, "a launch builds one SQLAlchemy engine"
    assert engines.connected == {id(engines.built[0])}, "and connects through it alone"


def test_a_launch_on_sqlite_opens_one_engine(workdir: Path, sample_data: Path, engines) -> None:
    launch_opens_one_engine(f"sqlite:///{workdir / 'studies.db'}", sample_data, engines)


@pytest.mark.postgres
def test_a_launch_on_postgres_opens_one_engine(
    postgres_url: str, workdir: Path, sample_data: Path, engines
) -> None:
    launch_opens_one_engine(postgres_url, sample_data, engines)


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_the_ledger_lives_on_optunas_engine(backend: str, workdir: Path, request) -> None:
    url = (
        f"sqlite:///{workdir / 'studies.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    db = Database.open(url)
    try:
        assert db.ledger.engine is db.optuna.engine is db.engine
        assert db.label == redact(db.url)
        tables = set(sqlalchemy.inspect(db.engine).get_table_names())
        assert {finalisation.name, "studies", "trials"} <= tables
        with db.ledger.budget_lock("a study"):  # the SQLite flock sits beside the database
            pass
        if backend == "sqlite":
            assert db.sqlite_path == workdir / "studies.db"
            assert (workdir / "studies.db.lock").exists()
    finally:
        db.dispose()
