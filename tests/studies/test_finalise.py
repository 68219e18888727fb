"""The test window is scored once per best trial, never used for selection, and exported."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import optuna
import pytest

from objectives.bars import load_bars
from objectives.evaluator import load_backend
from objectives.windows import WindowSpec
from storage.ledger import Ledger
from storage.rdb import open_storage
from studies.context import StudyContext
from studies.finalise import best_trial, finalise
from studies.open import open_study
from studies.worker import WorkerSettings, run_study
from tests.conftest import launch_fake, run_cli

NAME = "fake:BTCUSD:v20-t20-h1"


def study() -> optuna.Study:
    return optuna.load_study(study_name=NAME, storage="sqlite:///studies.db")


def test_launch_scores_the_best_trial_once_and_exports_it(workdir: Path, shared_data: Path):
    assert launch_fake(shared_data, 6) == 0
    scores = study().user_attrs["test_scores"]
    assert len(scores) == 1
    assert scores[0]["trial_number"] == study().best_trial.number
    assert set(scores[0]) >= {
        "price_mae",
        "return_mae",
        "latency_s",
        "naive_price_mae",
        "scored_at",
    }
    record = json.loads((workdir / "store" / "fake" / "BTCUSD.json").read_text())
    assert record["metadata"]["trial_number"] == study().best_trial.number
    assert record["test"]["price_mae"] == scores[0]["price_mae"]
    assert record["windows"] == {"val_window": 20, "test_window": 20, "forecast_horizon": 1}
    assert record["config"]["name"] and set(record["config"]) >= {"drift", "noise"}
    assert json.loads((workdir / "store" / "best" / "BTCUSD.json").read_text()) == record
    assert "sqlite:///studies.db" == record["metadata"]["storage"]


def test_export_again_without_a_new_best_does_not_rescore(workdir: Path, shared_data: Path):
    assert launch_fake(shared_data, 4) == 0
    assert launch_fake(shared_data, 4) == 0
    assert (
        run_cli("export", "--model", "fake", "--symbols", "BTCUSD", "--data-dir", shared_data) == 0
    )
    assert len(study().user_attrs["test_scores"]) == 1


def test_a_new_best_after_more_trials_is_scored_once(workdir: Path, shared_data: Path):
    assert launch_fake(shared_data, 3) == 0
    first_best = study().best_trial.number
    for target in (15, 30, 45):
        assert launch_fake(shared_data, target) == 0
        assert launch_fake(shared_data, target) == 0
    numbers = [s["trial_number"] for s in study().user_attrs["test_scores"]]
    assert numbers[0] == first_best
    assert len(numbers) == len(set(numbers))  # one scoring per best trial
    assert numbers[-1] == study().best_trial.number


def test_concurrent_finalisers_score_once(workdir: Path, shared_data: Path):
    url = "sqlite:///studies.db"
    backend = load_backend("fake")
    scored = []

    class CountingBackend:
        name = backend.name
        checkpoint_id = backend.checkpoint_id
        space = backend.space

        def evaluator(self, bars):
            inner = backend.evaluator(bars)

            class Counting:
                def forecast_close(self, targets, config, seed):
                    scored.append(int(targets[-1]))
                    return inner.forecast_close(targets, config, seed)

            return Counting()

    bars = load_bars(shared_data, "BTCUSD")
    ctx = StudyContext(CountingBackend(), bars, WindowSpec())
    storage = open_storage(url)
    ledger = Ledger(url)
    s = open_study(storage, ctx)
    run_study(s, ctx, ledger, 5, WorkerSettings(progress=False))
    scored.clear()
    results = []

    def finalise_in_thread() -> None:
        results.append(
            finalise(
                s,
                StudyContext(CountingBackend(), bars, WindowSpec()),
                Ledger(url),
                workdir / "store",
                url,
            )
        )

    threads = [threading.Thread(target=finalise_in_thread) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 6
    assert sum(r.scored_here for r in results) == 1
    assert scored.count(len(bars) - 1) == 1  # the test window was forecast once
    assert len({json.dumps(r.record, sort_keys=True) for r in results}) == 1


def test_search_never_reads_the_test_window(workdir: Path, shared_data: Path):
    """Trial metrics do not move when every test-window bar changes (no leaked test data)."""
    backend = load_backend("fake")
    bars = load_bars(shared_data, "BTCUSD")
    ctx = StudyContext(backend, bars, WindowSpec())
    changed = load_bars(shared_data, "BTCUSD")
    prices = changed.prices.copy()
    prices[ctx.windows.test[0] :] *= np.random.default_rng(1).uniform(0.5, 1.5, (20, 1))
    object.__setattr__(changed, "prices", prices)
    other = StudyContext(backend, changed, WindowSpec())
    assert other.search_evaluator is not None
    assert len(other.bars.head(other.windows.validation_end)) == ctx.windows.test[0]
    config = {"drift": 0.001, "noise": 0.01}
    a = ctx.search_evaluator.forecast_close(ctx.windows.validation, config, 3)
    b = other.search_evaluator.forecast_close(other.windows.validation, config, 3)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(IndexError):  # the search evaluator holds no test rows at all
        ctx.search_evaluator.bars.close[ctx.windows.test[0]]


def test_best_trial_ignores_test_scores(workdir: Path, shared_data: Path):
    assert launch_fake(shared_data, 6) == 0
    s = study()
    assert (
        best_trial(s).number
        == min(
            s.get_trials(states=(optuna.trial.TrialState.COMPLETE,)), key=lambda t: t.value
        ).number
    )
