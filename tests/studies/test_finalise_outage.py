"""A worker that is finalising rides out a dropped database (PostgreSQL).

Each case relaunches a study whose trials are done, with a new confirmation size (a new
finalisation round), and drops the database at one moment of the finalisation: every backend
connection of the database is terminated and the database refuses new ones until the worker's
main thread has met the outage (its first failed call), so the outage is seen by the call
after the moment, whatever the machine's load. The worker finishes: exit code 0, the round
measured once and published once, one warning line for the outage and one when it ends. Before
finalisation shared the worker's retry policy, each of these ended with exit code 3.

On SQLite: the ledger calls a finaliser retries are idempotent. (A permanent error during
finalisation still fails at once, and an outage past the wait still ends with exit code 3:
``test_outages.py``.)
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import psycopg
import pytest
from sqlalchemy import create_engine

import optimise.commands
import studies.finalise
import studies.publish
from storage.database import Database
from storage.ledger import Claim, Ledger, Publication, finalisation
from storage.outage import OUTAGE
from tests.conftest import PG_ADMIN, SAMPLE_DATA, _postgres_available, run_cli
from tests.studies.test_budget import assert_quiet_outages

NAME = "fake:AAPL:v20-t20-h1:trading"
N_TRIALS = 3


class Outage:
    """Drop every connection to ``database`` and refuse new ones until :meth:`end`."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.started = 0
        self.ended_by_worker = False
        self._on = False

    def start(self) -> None:
        if self.started:
            return  # one outage per case: a retried call goes through
        self.started += 1
        self._on = True
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{self.database}" ALLOW_CONNECTIONS false')
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (self.database,),
            )
            for _ in range(200):  # gone, not only signalled: the worker's next call fails
                left = admin.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (self.database,)
                ).fetchone()
                if left is not None and left[0] == 0:
                    break
                time.sleep(0.05)

    def end(self) -> None:
        if not self._on:
            return
        self._on = False
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{self.database}" ALLOW_CONNECTIONS true')

    def end_when_met(self, failed: Callable[..., None]) -> Callable[..., None]:
        """``OUTAGE.failed`` that also ends the outage once the main thread has met it."""

        def wrapper(*args: Any, **kwargs: Any) -> None:
            if self._on and threading.current_thread() is threading.main_thread():
                self.ended_by_worker = True
                self.end()
            failed(*args, **kwargs)

        return wrapper


@dataclass
class Launched:
    url: str
    store: Path
    db: Database  # the test's own handle on the database, for its checks
    png: bytes  # the first round's picture, drawn again by no case (it takes seconds)


@pytest.fixture(scope="module")
def launched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launched]:
    """A PostgreSQL database whose study has its trials and a first finalised round."""
    if not _postgres_available():
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    database = f"optimise_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{database}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}"
    store = tmp_path_factory.mktemp("outage") / "store"
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(store.parent)
            assert launch(url, store, candidates=5, draws=2) == 0
        png = (store / "fake" / "AAPL.png").read_bytes()
        yield Launched(url, store, Database.open(url), png)
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def launch(url: str, store: Path, candidates: int, draws: int) -> int:
    return run_cli(
        "launch", "--model", "fake", "--symbols", "AAPL", "--data-dir", SAMPLE_DATA,
        "--n-trials", N_TRIALS, "--no-progress", "--storage", url, "--store", store,
        "--confirm-candidates", candidates, "--confirm-draws", draws, "--no-default-comparison",
    )  # fmt: skip


def before(owner: Any, name: str, outage: Outage) -> Callable[..., Any]:
    """``owner.name`` that starts the outage when it is first called, then runs."""
    real = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        outage.start()
        return real(*args, **kwargs)

    return wrapper


def after(owner: Any, name: str, outage: Outage) -> Callable[..., Any]:
    """``owner.name`` that runs, then starts the outage (for the call after it)."""
    real = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        outage.start()
        return result

    return wrapper


#: where the database goes away, and what the worker does next that needs it
MOMENTS = {
    "finalise begins (reading the candidates)": (before, optimise.commands, "finalise"),
    "claiming the round": (before, Ledger, "claim"),
    "confirmed, before the test window (renewing the lease)": (after, studies.finalise, "confirm"),
    "storing the result (ledger complete)": (before, Ledger, "complete"),
    "publishing (the compare-and-set, under the store lock)": (before, Ledger, "publish"),
    "after the study attrs (attaching the picture)": (before, studies.publish, "attach"),
    "writing the dashboard note": (before, studies.publish, "write_note"),
}


@pytest.mark.postgres
@pytest.mark.parametrize("moment", list(MOMENTS))
def test_a_finalising_worker_rides_out_a_dropped_database(
    launched: Launched,
    moment: str,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture,
    workdir: Path,
) -> None:
    url, store, db = launched.url, launched.store, launched.db
    draws = 2 + list(MOMENTS).index(moment)  # a new round per case (one candidate: quick)
    outage = Outage(url.rsplit("/", 1)[1])
    wrap, owner, name = MOMENTS[moment]
    monkeypatch.setattr(owner, name, wrap(owner, name, outage))
    monkeypatch.setattr(OUTAGE, "failed", outage.end_when_met(OUTAGE.failed))
    monkeypatch.setattr(studies.publish, "render", lambda _record: launched.png)
    measured = []
    evaluate = studies.finalise.evaluate
    monkeypatch.setattr(
        studies.finalise, "evaluate", lambda *a, **k: measured.append(a[2]) or evaluate(*a, **k)
    )
    before_scores = scores_of(db)
    capfd.readouterr()
    try:
        code = launch(url, store, candidates=1, draws=draws)
    finally:
        outage.end()  # the old code never met it in a retry
        OUTAGE.given_up()
    out, err = capfd.readouterr()
    assert outage.started == 1, f"the outage was not injected: {moment}"
    assert code == 0, err
    assert outage.ended_by_worker, err  # the worker met it and retried
    warnings = [x for x in err.splitlines() if x.startswith("warning: database unavailable (")]
    assert len(warnings) == 1, err
    assert warnings[0].endswith("; retrying for up to 60 s"), err
    assert len([x for x in err.splitlines() if x.startswith("database back after ")]) == 1, err
    assert_quiet_outages(out + err)
    assert len(measured) == 2  # the winner's first pass again and the test window: once
    scores = scores_of(db)
    assert len(scores) == len(before_scores) + 1  # one new round, scored once
    assert len({s["round"] for s in scores}) == len(scores)
    record = json.loads((store / "fake" / "AAPL.json").read_text())
    assert len(record["metadata"]["selection"]["seeds"]) == draws  # this round's record
    assert record["test"]["price_mae"] == scores[-1]["price_mae"]
    study = optuna.load_study(study_name=NAME, storage=db.optuna)
    assert study.user_attrs["winner"]["trial_number"] == record["metadata"]["trial_number"]
    with db.engine.connect() as connection:
        rows = connection.execute(finalisation.select()).all()
    assert [r.status for r in rows] == ["done"] * len(rows)  # no claim left pending


def scores_of(db: Database) -> list[dict[str, Any]]:
    study = optuna.load_study(study_name=NAME, storage=db.optuna)
    return list(study.user_attrs["test_scores"])


def test_the_ledger_calls_a_finaliser_retries_are_idempotent(tmp_path: Path) -> None:
    """Each call repeated after its first attempt committed (its acknowledgement lost in the
    outage) answers as the first attempt did: the claim is still won, the round still taken
    over and completed; nothing is taken from another owner."""
    ledger = Ledger(create_engine(f"sqlite:///{tmp_path / 'ledger.db'}"))
    key, round_key = "fake:AAPL#uid#fingerprint", "round"
    for _ in range(2):
        assert ledger.claim(key, round_key, 0, "a", 60.0) == Claim("won")
    assert ledger.claim(key, round_key, 0, "b", 60.0) == Claim("busy", owner="a")
    for _ in range(2):
        assert ledger.take_over(key, round_key, "a", "b", 60.0)
    assert not ledger.take_over(key, round_key, "a", "c", 60.0)
    assert not ledger.renew(key, round_key, "a", 60.0)
    for _ in range(2):
        assert ledger.renew(key, round_key, "b", 60.0)
    assert not ledger.complete(key, round_key, "a", "{}")  # taken over: not a's to complete
    for _ in range(2):
        assert ledger.complete(key, round_key, "b", '{"r": 1}')
    assert not ledger.complete(key, round_key, "a", "{}")
    assert ledger.claim(key, round_key, 0, "b", 60.0) == Claim("done", '{"r": 1}')
    for _ in range(2):
        assert ledger.publish(key, round_key, 3, 0) is None
    assert ledger.published(key) == Publication(round_key, 3, 0)
