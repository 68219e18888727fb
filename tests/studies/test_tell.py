"""A worker's result meets a trial another worker already finished: it is left alone."""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.trial import TrialState

from storage.optuna_internals import set_trial_state
from studies.worker import WorkerSettings, _tell


def test_a_trial_failed_by_another_worker_is_not_told_again(tmp_path: Path) -> None:
    # as when recovery declares a worker dead during a database outage and fails its trial
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'studies.db'}")
    trial = study.ask()
    assert set_trial_state(study, trial, TrialState.FAIL)

    told = _tell(study, trial, TrialState.COMPLETE, 1.5, WorkerSettings(progress=False))

    assert told == TrialState.FAIL
    (stored,) = study.get_trials()
    assert stored.state == TrialState.FAIL and stored.value is None


def test_a_tell_repeated_after_a_lost_acknowledgement_keeps_the_first(tmp_path: Path) -> None:
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'studies.db'}")
    trial = study.ask()
    settings = WorkerSettings(progress=False)

    assert _tell(study, trial, TrialState.COMPLETE, 1.5, settings) == TrialState.COMPLETE
    assert _tell(study, trial, TrialState.COMPLETE, 1.5, settings) == TrialState.COMPLETE
    assert study.get_trials()[0].value == 1.5
