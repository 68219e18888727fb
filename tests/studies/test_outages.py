"""Issue 21, item 7: a database outage is one line when it starts and one when it ends, whichever
thread meets it, with nothing from Optuna's logger (its multi-line ``Caught an error from
sqlalchemy … [SQL: …]``) or ours at warning level; a database still unreachable after the wait
ends the command with one line and exit code 3, not 2 (the code of a user mistake).

The fault suite (``test_faults.py``, ``test_budget.py``) checks the same lines on real
PostgreSQL outages (``assert_quiet_outages``)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
import sqlalchemy.orm
from sqlalchemy.exc import OperationalError

from errors import EXIT_UNREACHABLE
from storage.exceptions import DatabaseUnreachableError
from storage.ledger import Ledger
from storage.outage import OUTAGE
from studies.exceptions import StudyError
from studies.finalise import FinaliseSettings, finalise
from studies.periodic import Periodic
from studies.resilient import Retry
from studies.worker import WorkerSettings, _resilient
from tests.conftest import run_cli
from tests.studies.test_late_finaliser import make_setup

REFUSED = "postgresql+psycopg://postgres@127.0.0.1:9/nothing"  # port 9: connection refused


def refused() -> OperationalError:
    return OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))


@pytest.fixture(autouse=True)
def no_outage_left() -> Iterator[None]:
    yield
    OUTAGE.given_up()  # the process-wide outage state: no test leaves one under way


def test_optunas_query_warning_is_not_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture
) -> None:
    """Optuna logs a failed trials query with its SQL at warning level and tries once more."""
    from storage.rdb import open_storage
    from storage.urls import parse

    storage = open_storage(parse(f"sqlite:///{tmp_path / 'studies.db'}"))
    study = optuna.create_study(study_name="s", storage=storage)
    study.enqueue_trial({"x": 1.0})
    real, failures = sqlalchemy.orm.Query.all, [refused()]

    def all_once_failing(self: sqlalchemy.orm.Query) -> list:
        if failures:
            raise failures.pop()
        return real(self)

    monkeypatch.setattr(sqlalchemy.orm.Query, "all", all_once_failing)
    capfd.readouterr()
    assert len(study.get_trials()) == 1  # Optuna's fallback query answered
    assert not failures  # the failing query did run
    err = capfd.readouterr().err
    assert "Caught an error from sqlalchemy" not in err and "[SQL:" not in err, err


def test_an_outage_met_by_two_threads_is_one_line_and_one_on_recovery(
    capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture
) -> None:
    down = threading.Event()
    down.set()

    def storage_call() -> int:
        if down.is_set():
            raise refused()
        return 7

    caplog.set_level(logging.WARNING)
    threading.Timer(1.0, down.clear).start()
    with Periodic("heartbeat of trial id 1", 0.05, storage_call):  # a trial's heartbeat
        assert _resilient(storage_call, WorkerSettings(db_outage_s=30)) == 7
        time.sleep(0.2)  # the heartbeat succeeds too
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2, lines
    assert lines[0] == (
        "warning: database unavailable (ConnectionRefusedError: connection refused); retrying "
        "for up to 30 s"
    )
    assert lines[1].startswith("database back after ") and lines[1].endswith(" s; continuing")
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_a_worker_that_loses_the_database_past_the_wait_gives_up_with_exit_code_3(
    capsys: pytest.CaptureFixture,
) -> None:
    def storage_call() -> None:
        raise refused()

    with pytest.raises(DatabaseUnreachableError) as raised:
        _resilient(storage_call, WorkerSettings(db_outage_s=0.5))
    assert raised.value.exit_code == EXIT_UNREACHABLE == 3
    assert str(raised.value).startswith("lost the database for over 0 s (ConnectionRefused")
    assert "launch again to resume" in str(raised.value)
    assert capsys.readouterr().err.count("warning: database unavailable") == 1


def test_a_database_unreachable_past_the_wait_exits_3_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import storage.database

    opened = storage.database.open_storage
    monkeypatch.setattr(
        storage.database, "open_storage", lambda url, **kw: opened(url, **{**kw, "outage_s": 1})
    )
    assert run_cli("status", "--storage", REFUSED) == 3
    err = capsys.readouterr().err
    warning, error = err.strip().splitlines()
    assert warning.startswith("warning: database unavailable (OperationalError: connection")
    assert error.startswith("error: cannot open storage postgresql+psycopg://postgres@127.0.0.1:9")
    assert error.endswith("(unreachable for 1 s; run the command again once it is up)")


def test_an_outage_error_no_command_waited_out_is_one_line_and_exit_3(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, workdir: Path
) -> None:
    """What reached the user as Optuna's generic "invalid data in the commit, e.g. exceeding
    max length", exit code 1."""
    import optimise.commands

    def status(_args: object) -> int:
        try:
            raise refused()
        except OperationalError as exc:
            raise optuna.exceptions.StorageInternalError("invalid data in the commit") from exc

    monkeypatch.setattr(optimise.commands, "status", status)
    assert run_cli("status") == 3
    assert capsys.readouterr().err == (
        "error: the database was unreachable: ConnectionRefusedError: connection refused\n"
    )


def test_finalisation_past_the_outage_wait_exits_3_and_a_permanent_error_at_once(
    workdir: Path,
    sample_data: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    """Finalisation retries under the worker's policy (``test_finalise_outage.py``): a
    permanent error still fails at once, and an outage past the wait is still exit code 3."""
    setup = make_setup(f"sqlite:///{workdir / 'studies.db'}", workdir, sample_data,
                       monkeypatch, 3)  # fmt: skip
    errors = [OperationalError("UPDATE", {}, Exception("password authentication failed"))]
    calls = []

    def claim(*_args: Any) -> None:
        calls.append(1)
        raise errors[0]

    monkeypatch.setattr(Ledger, "claim", claim)
    settings = FinaliseSettings(draws=2, compare_default=False, retry=Retry(outage_s=0.6))
    with pytest.raises(StudyError, match="^database error: Exception: password auth"):
        finalise(setup.study, setup.ctx, setup.ledger, setup.store, setup.url, settings)
    assert len(calls) == 1  # not retried
    errors[0] = refused()
    capsys.readouterr()
    try:
        with pytest.raises(DatabaseUnreachableError) as raised:
            finalise(setup.study, setup.ctx, setup.ledger, setup.store, setup.url, settings)
    finally:
        OUTAGE.given_up()
    assert raised.value.exit_code == 3
    assert str(raised.value).startswith("lost the database for over 1 s (ConnectionRefused")
    assert len(calls) > 2  # retried until the wait ran out
    assert capsys.readouterr().err.count("warning: database unavailable") == 1
    assert setup.test_scorings == []  # nothing was measured without the claim
