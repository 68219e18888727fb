"""Exact budgets with several workers, and a worker that loses the database for a while."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import optuna
import psycopg
import pytest
from optuna.trial import TrialState

from storage.database import Database
from tests.conftest import PG_ADMIN, cli_command, cli_env
from tests.processes import Child
from tests.studies.test_crash_recovery import complete_count, launch_args, wait_for

NAME = "fake:AAPL:v20-t20-h1:trading"


def run_workers(url: str, workdir: Path, data: Path, n_workers: int, n_trials: int) -> None:
    args = launch_args(data, url, workdir, n_trials)
    workers = [
        Child(cli_command(*args), env=cli_env(FAKE_TRIAL_SLEEP="0.05")) for _ in range(n_workers)
    ]
    for worker in workers:
        code, out = worker.finish()
        assert code == 0, out


def assert_quiet_outages(output: str) -> None:
    """Issue 21, item 7: a worker's outages are one line each and one line when the database
    is back, whichever thread met them; nothing from Optuna's logger at warning level (its
    ``Caught an error from sqlalchemy … [SQL: …]``) and no second warning of the same outage
    (a heartbeat's ``WARNING studies.periodic: … failed``)."""
    lines = output.splitlines()
    noise = ("[W ", "[E ", "[SQL", "WARNING studies.periodic", "WARNING optuna")
    assert not [x for x in lines if x.startswith(noise)], output
    assert "Caught an error from sqlalchemy" not in output and "invalid data" not in output
    outages = [x for x in lines if x.startswith("warning: database unavailable (")]
    recoveries = [x for x in lines if x.startswith("database back after ")]
    assert len(outages) == len(recoveries), output


def assert_exact(url: str, n_trials: int, workdir: Path) -> optuna.Study:
    study = optuna.load_study(study_name=NAME, storage=Database.open(url).optuna)
    states = [t.state for t in study.trials]
    assert states.count(TrialState.COMPLETE) == n_trials
    assert len(states) == n_trials  # nothing failed, nothing started beyond the budget
    assert len(study.user_attrs["test_scores"]) == 1
    assert (workdir / "store" / "fake" / "AAPL.json").exists()
    workers = {t.user_attrs["worker"] for t in study.trials}
    assert len(workers) > 1  # the work really was shared
    return study


@pytest.mark.postgres
def test_four_workers_on_postgres_finish_exactly_the_budget(postgres_url, workdir, sample_data):
    run_workers(postgres_url, workdir, sample_data, 4, 24)
    assert_exact(postgres_url, 24, workdir)


def test_four_workers_on_sqlite_finish_exactly_the_budget(workdir, sample_data):
    url = f"sqlite:///{workdir / 'studies.db'}"
    run_workers(url, workdir, sample_data, 4, 24)
    assert_exact(url, 24, workdir)


@pytest.mark.postgres
def test_a_worker_that_loses_postgres_for_seconds_carries_on(postgres_url, workdir, sample_data):
    database = postgres_url.rsplit("/", 1)[1]
    args = launch_args(sample_data, postgres_url, workdir, 12)
    worker = Child(cli_command(*args), env=cli_env(FAKE_TRIAL_SLEEP="0.2"))
    wait_for(lambda: complete_count(postgres_url) >= 3, worker)
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (database,),
        )
        time.sleep(4)
        admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
    code, err = worker.finish()
    assert code == 0, err
    # it noticed (one warning naming the driver's reason), retried and carried on
    assert err.count("warning: database unavailable (") == 1, err
    assert "InvalidatePoolError" not in err and "database back after" in err
    assert_quiet_outages(err)
    study = optuna.load_study(study_name=NAME, storage=Database.open(postgres_url).optuna)
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 12
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_each_queued_trial_is_taken_by_exactly_one_worker(backend, request, workdir, sample_data):
    """SQLite ignores FOR UPDATE: without BEGIN IMMEDIATE several processes took one trial."""
    if backend == "sqlite":
        url = f"sqlite:///{workdir / 'studies.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    args = launch_args(sample_data, url, workdir, 1)
    assert subprocess.run(cli_command(*args), env=cli_env(), capture_output=True).returncode == 0
    study = optuna.load_study(study_name=NAME, storage=Database.open(url).optuna)
    queued = [{"drift": round(-0.02 + 0.003 * i, 4), "noise": 0.01} for i in range(12)]
    for params in queued:
        study.enqueue_trial(params)
    args = launch_args(sample_data, url, workdir, 13)
    workers = [Child(cli_command(*args), env=cli_env(FAKE_TRIAL_SLEEP="0.05")) for _ in range(4)]
    done = [w.finish() for w in workers]
    errors = [out for _, out in done]
    assert all(code == 0 for code, _ in done), errors
    assert not any("failed by another worker" in e for e in errors)
    trials = optuna.load_study(study_name=NAME, storage=Database.open(url).optuna).trials
    assert [t.state for t in trials].count(TrialState.COMPLETE) == 13 == len(trials)
    ran = sorted((t.params["drift"], t.params["noise"]) for t in trials[1:])
    assert ran == sorted((p["drift"], p["noise"]) for p in queued)
