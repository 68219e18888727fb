"""Workers die: the study still ends with exactly N complete trials and loses none.

Real processes, real databases (SQLite and PostgreSQL); the model is the test double.
"""

from __future__ import annotations

import functools
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import optuna
import pytest
from optuna.storages import RDBStorage
from optuna.trial import TrialState

from storage.rdb import open_storage
from storage.urls import parse
from tests.conftest import cli_command, cli_env, run_cli_process
from tests.processes import Child, wait_until

T = TypeVar("T")

NAME = "fake:AAPL:v20-t20-h1:trading"


def launch_args(data: Path, url: str, workdir: Path, n_trials: int) -> list[str]:
    return [
        "launch",
        "--model",
        "fake",
        "--symbols",
        "AAPL",
        "--data-dir",
        str(data),
        "--n-trials",
        str(n_trials),
        "--storage",
        url,
        "--store",
        str(workdir / "store"),
        "--heartbeat",
        "1",
        "--grace",
        "3",
        "--no-progress",
    ]


@functools.cache
def storage_for(url: str) -> RDBStorage:
    """One storage per URL for the test's polling (a new engine per poll would hold the
    database's connections while the workers need them)."""
    return open_storage(parse(url))


def load(url: str) -> optuna.Study:
    return optuna.load_study(study_name=NAME, storage=storage_for(url))


def wait_for(predicate: Callable[[], T | None], *workers: Child) -> T:
    """``predicate``'s first true value, polled while ``workers`` (which bring it about) run:
    fails at once, with what they printed, when one of them ends first (``tests/processes.py``)."""
    return wait_until(predicate, *workers, what="the study's state")


def running_trial_of(url: str, pid: int):
    try:
        trials = load(url).get_trials(states=(TrialState.RUNNING,))
    except KeyError:
        return None
    mine = [
        t
        for t in trials
        if str(t.user_attrs.get("worker", "")).split(":")[1:2] == [str(pid)]
        and set(t.params) == {"drift", "noise"}
    ]  # a trial of that worker that has all its parameters and is evaluating them (its attrs,
    # the config among them, are written in one transaction when the scoring ends)
    return mine[0] if mine else None


def complete_count(url: str) -> int:
    try:
        return len(load(url).get_trials(states=(TrialState.COMPLETE,)))
    except KeyError:
        return 0


def test_a_launch_killed_mid_study_resumes_to_exactly_n(workdir: Path, sample_data: Path):
    url = f"sqlite:///{workdir / 'studies.db'}"
    args = launch_args(sample_data, url, workdir, 10)
    worker = Child(cli_command(*args), env=cli_env(FAKE_TRIAL_SLEEP="0.4"))
    wait_for(lambda: complete_count(url) >= 3, worker)
    killed = wait_for(lambda: running_trial_of(url, worker.pid), worker)
    before = {t.number: t.value for t in load(url).get_trials(states=(TrialState.COMPLETE,))}
    os.kill(worker.pid, signal.SIGKILL)
    worker.finish()
    assert load(url).trials[killed.number].state == TrialState.RUNNING

    result = run_cli_process(*args)
    assert result.returncode == 0, result.stderr

    study = load(url)
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 10
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))
    assert study.trials[killed.number].state == TrialState.FAIL
    retried = [t for t in study.trials if t.system_attrs.get("failed_trial") == killed.number]
    killed = study.trials[killed.number]  # re-read: a snapshot taken mid-commit may lack params
    assert len(retried) == 1 and retried[0].params == killed.params
    after = {t.number: t.value for t in study.get_trials(states=(TrialState.COMPLETE,))}
    assert all(after[n] == v for n, v in before.items())  # no complete trial lost
    assert len(study.user_attrs["test_scores"]) == 1


def _four_workers_one_killed(url: str, workdir: Path, data: Path, n_trials: int) -> None:
    """``n_trials`` must outlast three workers' start-up (imports, opening the database), or
    the first worker finishes the study before the victim holds a trial."""
    args = launch_args(data, url, workdir, n_trials)
    env = cli_env(FAKE_TRIAL_SLEEP="0.3")
    first = Child(cli_command(*args), env=env)
    wait_for(lambda: complete_count(url) >= 1, first)  # study created; now the others join
    # the victim's trials outlast the kill (a loaded CPU may see its trial only as it ends)
    slow = cli_env(FAKE_TRIAL_SLEEP="120")
    workers = [first, Child(cli_command(*args), env=env), Child(cli_command(*args), env=slow),
               Child(cli_command(*args), env=env)]  # fmt: skip
    victim = workers[2]
    killed = wait_for(lambda: running_trial_of(url, victim.pid), victim)
    victim.process.send_signal(signal.SIGKILL)
    victim.finish()
    for w in workers:
        if w is not victim:
            code, out = w.finish()
            assert code == 0, out

    study = load(url)
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == n_trials
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))
    assert study.trials[killed.number].state == TrialState.FAIL
    retried = [t for t in study.trials if t.system_attrs.get("failed_trial") == killed.number]
    killed = study.trials[killed.number]  # re-read: a snapshot taken mid-commit may lack params
    assert len(retried) == 1 and retried[0].params == killed.params
    assert retried[0].state == TrialState.COMPLETE
    scores = study.user_attrs["test_scores"]
    assert [s["trial_number"] for s in scores] == [study.user_attrs["winner"]["trial_number"]]


@pytest.mark.postgres
def test_four_workers_on_postgres_survive_a_sigkill(
    postgres_url: str, workdir: Path, sample_data: Path
):
    _four_workers_one_killed(postgres_url, workdir, sample_data, 40)


def test_four_workers_on_sqlite_survive_a_sigkill(workdir: Path, sample_data: Path):
    _four_workers_one_killed(f"sqlite:///{workdir / 'studies.db'}", workdir, sample_data, 40)


def _orphan(url: str, data: Path, workdir: Path, *, worker: str | None, heartbeat: bool) -> int:
    """Create the study, then leave one RUNNING trial as a dead worker would."""
    assert run_cli_process(*launch_args(data, url, workdir, 1)).returncode == 0
    study = load(url)
    trial = study.ask()
    trial.suggest_float("drift", -0.02, 0.02)
    if heartbeat:
        study._storage.record_heartbeat(trial._trial_id)
    if worker is not None:
        trial.set_user_attr("worker", worker)
    return trial.number


@pytest.mark.parametrize(
    "worker, heartbeat",
    [(None, False), ("another-host:4242:1", True)],
    ids=["killed-before-first-heartbeat", "silent-worker-on-another-host"],
)
def test_orphaned_trials_are_failed_after_the_grace_period_and_retried(
    worker: str | None, heartbeat: bool, workdir: Path, sample_data: Path
):
    url = f"sqlite:///{workdir / 'studies.db'}"
    orphan = _orphan(url, sample_data, workdir, worker=worker, heartbeat=heartbeat)
    started = time.monotonic()
    result = run_cli_process(*launch_args(sample_data, url, workdir, 4))
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started >= 2.5  # waited for the grace period, not sooner
    study = load(url)
    assert study.trials[orphan].state == TrialState.FAIL
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 4
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))


def test_an_objective_that_raises_is_retried_then_failed_with_its_reason(
    workdir: Path, sample_data: Path
):
    url = f"sqlite:///{workdir / 'studies.db'}"
    result = run_cli_process(*launch_args(sample_data, url, workdir, 3), FAKE_FAIL="1")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: 5 trials")
    study = load(url)
    failed = study.get_trials(states=(TrialState.FAIL,))
    assert len(failed) == 5
    assert all("simulated out of memory" in t.user_attrs["fail_reason"] for t in failed)
    assert result.stderr.count("attempt 3/3 failed") == 5


def test_sigint_stops_cleanly_and_the_study_resumes(workdir: Path, sample_data: Path):
    url = f"sqlite:///{workdir / 'studies.db'}"
    # a budget the slowed worker cannot finish before the signal lands, even when this test
    # polls slowly on a busy CPU (with 8 trials it once finished first and exited 0)
    n_trials = 30
    args = launch_args(sample_data, url, workdir, n_trials)
    worker = Child(cli_command(*args), env=cli_env(FAKE_TRIAL_SLEEP="0.4"))
    wait_for(lambda: complete_count(url) >= 2, worker)
    wait_for(lambda: running_trial_of(url, worker.pid), worker)
    worker.process.send_signal(signal.SIGINT)
    code, err = worker.finish()
    assert code == 130, err
    assert "Traceback" not in err and "resume" in err
    study = load(url)
    assert not study.get_trials(states=(TrialState.RUNNING,))
    (queued,) = study.get_trials(states=(TrialState.WAITING,))  # interrupted, re-queued
    (stopped,) = study.get_trials(states=(TrialState.FAIL,))
    assert stopped.user_attrs["interrupted"] is True
    assert "fail_reason" not in queued.user_attrs and queued.params == stopped.params
    status = run_cli_process("status", "--wide", "--storage", url)
    header, _, row = status.stdout.splitlines()[:3]
    cells = dict(zip(header.split(), row.split(), strict=False))
    assert cells["fail"] == "0" and cells["interrupted"] == "1"
    assert run_cli_process(*args).returncode == 0
    study = load(url)
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == n_trials
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))
    retried = [t for t in study.trials if t.user_attrs.get("retry_of") == stopped.number]
    assert len(retried) == 1 and "fail_reason" not in retried[0].user_attrs
