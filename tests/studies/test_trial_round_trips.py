"""A trial's user attrs cost one transaction, not one per attr (docs/bench-trial-cost.md)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState
from sqlalchemy import event
from sqlalchemy.engine import Engine

import storage.database as database_module
from storage.optuna_internals import set_trial_state, set_user_attrs, storage_of
from tests.conftest import launch_fake


class Writes:
    """Transactions on an engine, and which of them wrote user attrs or heartbeats."""

    def __init__(self, engine: Engine) -> None:
        self.transactions: list[list[str]] = [[]]
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "commit", self._commit)

    def _statement(self, _c: Any, _k: Any, statement: str, *_: Any) -> None:
        self.transactions[-1].append(statement)

    def _commit(self, *_: Any) -> None:
        self.transactions.append([])

    def writing(self, table: str) -> list[list[str]]:
        return [t for t in self.transactions if any(f"INTO {table}" in s for s in t)]


@pytest.fixture
def study(tmp_path: Path) -> Iterator[optuna.Study]:
    yield optuna.create_study(storage=f"sqlite:///{tmp_path / 'studies.db'}")


def test_many_attrs_and_a_heartbeat_are_one_transaction(study: optuna.Study) -> None:
    trial = study.ask()
    writes = Writes(storage_of(study)._backend.engine)  # noqa: SLF001 - the engine to watch
    attrs = {f"a{i}": [i, {"x": i / 3}] for i in range(15)}

    set_user_attrs(study, trial, attrs, heartbeat=True)

    assert len(writes.writing("trial_user_attributes")) == 1
    assert writes.writing("trial_user_attributes") == writes.writing("trial_heartbeats")
    (stored,) = study.get_trials()
    assert stored.user_attrs == attrs and trial.user_attrs == attrs
    set_user_attrs(study, trial, {"a0": "again"})  # an upsert: the same key is overwritten
    assert study.get_trials()[0].user_attrs["a0"] == "again"


def test_attrs_of_a_finished_trial_are_refused(study: optuna.Study) -> None:
    trial = study.ask()
    assert set_trial_state(study, trial, TrialState.FAIL)
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        set_user_attrs(study, trial, {"late": 1})
    assert study.get_trials()[0].user_attrs == {}


def test_a_launched_trial_writes_its_attrs_in_two_transactions(
    workdir: Path, sample_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    watched: list[Writes] = []
    opened = database_module.Database.open.__func__

    def open_and_watch(cls: type, *args: Any, **kwargs: Any) -> database_module.Database:
        database = opened(cls, *args, **kwargs)
        watched.append(Writes(database.engine))
        return database

    monkeypatch.setattr(database_module.Database, "open", classmethod(open_and_watch))
    assert launch_fake(sample_data, 6, "--no-warm-start") == 0

    trials = optuna.load_study(study_name=None, storage="sqlite:///studies.db").get_trials()
    assert len(trials) == 6 and {"worker", "config", "trial_cost_s"} <= set(trials[0].user_attrs)
    # per trial: the owner with the first heartbeat when it is taken, every scoring attr at
    # the end (before: one transaction per attr, 18 per trial); an enqueued trial's source
    # was written when it was queued
    writes = sum(len(w.writing("trial_user_attributes")) for w in watched)
    queued = sum("source" in t.user_attrs for t in trials)
    assert queued <= 1 and writes == 2 * len(trials) + queued
