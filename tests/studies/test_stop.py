"""A Ctrl-C whose KeyboardInterrupt is lost (raised in a garbage-collection callback, where
Python prints "Exception ignored" and drops it) still stops the worker, and its trial is
queued again rather than told."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

import studies.stop
from tests.conftest import launch_fake
from tests.fake_backend import FakeEvaluator


def test_a_lost_interrupt_still_stops_the_worker_and_requeues_its_trial(
    workdir: Path, sample_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = FakeEvaluator.forecast
    calls = []

    def forecast_losing_an_interrupt(self, targets, settings, seed):
        calls.append(seed)
        if len(calls) == 3:  # the third trial: Ctrl-C arrives and its exception is dropped
            try:
                signal.getsignal(signal.SIGINT)(signal.SIGINT, None)
            except KeyboardInterrupt:
                pass
        return original(self, targets, settings, seed)

    monkeypatch.setattr(FakeEvaluator, "forecast", forecast_losing_an_interrupt)
    monkeypatch.setattr(studies.stop, "_requested", threading.Event())  # none left for others
    assert launch_fake(sample_data, 10) == 130
    study = optuna.load_study(
        study_name="fake:AAPL:v20-t20-h1:trading", storage="sqlite:///studies.db"
    )
    assert len(calls) == 3, "no trial starts after the stop request"
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 2
    (stopped,) = study.get_trials(states=(TrialState.FAIL,))
    (queued,) = study.get_trials(states=(TrialState.WAITING,))
    assert stopped.user_attrs["interrupted"] is True and queued.params == stopped.params
