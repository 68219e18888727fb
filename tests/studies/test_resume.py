"""`--n-trials` is the study's total target; re-runs resume; changed data or windows refuse."""

from __future__ import annotations

import shutil
from pathlib import Path

import optuna
import pandas as pd
import pytest

from tests.conftest import launch_fake


def launch_levels(data, n_trials, *extra):
    """``launch_fake`` under ``--task levels``: these tests are about the search, not the task."""
    return launch_fake(data, n_trials, "--task", "levels", *extra)


def trials(state: optuna.trial.TrialState) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name="fake:AAPL:v20-t20-h1", storage="sqlite:///studies.db")
    return study.get_trials(states=(state,))


def test_a_rerun_resumes_to_the_total_target(workdir: Path, sample_data: Path) -> None:
    assert launch_levels(sample_data, 5) == 0
    assert len(trials(optuna.trial.TrialState.COMPLETE)) == 5
    assert launch_levels(sample_data, 5) == 0
    assert len(trials(optuna.trial.TrialState.COMPLETE)) == 5
    assert launch_levels(sample_data, 8) == 0
    assert len(trials(optuna.trial.TrialState.COMPLETE)) == 8


def test_the_first_trial_is_the_known_good_setting(workdir: Path, sample_data: Path) -> None:
    assert launch_levels(sample_data, 2) == 0
    first = min(trials(optuna.trial.TrialState.COMPLETE), key=lambda t: t.number)
    assert first.params == {"drift": 0.0, "noise": 0.0}


def test_study_attrs_and_trial_attrs_are_recorded(workdir: Path, sample_data: Path) -> None:
    assert launch_levels(sample_data, 3) == 0
    study = optuna.load_study(study_name="fake:AAPL:v20-t20-h1", storage="sqlite:///studies.db")
    attrs = study.user_attrs
    assert attrs["windows"] == {
        "val_window": 20,
        "test_window": 20,
        "horizon": 1,
        "min_context": 128,
    }
    assert attrs["metric"] == "price_mae" and attrs["checkpoint"] == "fake-model"
    assert len(attrs["data_fingerprint"]) == 16 and attrs["search_space"]
    assert study.metric_names == ["validation price MAE"]
    trial = study.best_trial
    for key in ("return_mae", "trial_cost_s", "naive_price_mae", "skill", "worker", "config"):
        assert key in trial.user_attrs


def test_changed_data_is_refused_not_mixed(
    workdir: Path, sample_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = workdir / "data"
    data.mkdir()
    shutil.copy(sample_data / "AAPL.csv", data / "AAPL.csv")
    assert launch_levels(data, 2) == 0
    frame = pd.read_csv(data / "AAPL.csv")
    frame.loc[len(frame) - 30, "close"] *= 1.01
    frame.to_csv(data / "AAPL.csv", index=False)
    capsys.readouterr()
    assert launch_levels(data, 4) == 2
    err = capsys.readouterr().err
    assert "refusing to resume" in err and "data changed" in err
    assert len(trials(optuna.trial.TrialState.COMPLETE)) == 2


def test_changed_min_context_is_refused(
    workdir: Path, sample_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert launch_levels(sample_data, 2) == 0
    assert launch_levels(sample_data, 4, "--min-context", "64") == 2
    assert "windows differ" in capsys.readouterr().err


def test_same_trial_number_reproduces_its_metrics(workdir: Path, sample_data: Path) -> None:
    from objectives.bars import load_bars
    from objectives.evaluator import evaluate, load_backend
    from objectives.windows import WindowSpec, split

    assert launch_levels(sample_data, 12) == 0
    best = max(trials(optuna.trial.TrialState.COMPLETE), key=lambda t: t.number)
    bars = load_bars(sample_data, "AAPL")
    windows = split(len(bars), WindowSpec())
    backend = load_backend("fake")
    config = backend.space.from_params(best.params)
    again = evaluate(backend.evaluator(bars), bars, windows.validation, config, 0)
    assert again.metrics.price_mae == best.value
    assert list(again.forecast) == best.user_attrs["val_forecasts"]


def test_a_timeout_stops_early_without_exporting_and_a_rerun_finishes(
    workdir: Path, sample_data: Path
) -> None:
    from tests.conftest import run_cli_process

    args = [
        "launch",
        "--model",
        "fake",
        "--symbols",
        "AAPL",
        "--data-dir",
        sample_data,
        "--n-trials",
        "40",
        "--storage",
        "sqlite:///studies.db",
        "--no-progress",
        "--task",
        "levels",
    ]
    slow = run_cli_process(*args, "--timeout", "1", FAKE_TRIAL_SLEEP="0.2")
    assert slow.returncode == 0, slow.stderr
    assert "not finished (resume with the same command): fake:AAPL:v20-t20-h1" in slow.stdout
    assert 0 < len(trials(optuna.trial.TrialState.COMPLETE)) < 40
    assert not (workdir / "store").exists()
    assert run_cli_process(*args).returncode == 0
    assert len(trials(optuna.trial.TrialState.COMPLETE)) == 40
    assert (workdir / "store" / "fake" / "AAPL.json").exists()


def test_a_study_made_before_tasks_resumes_under_levels_and_never_under_trading(
    workdir: Path, sample_data: Path
) -> None:
    """A study without the ``task`` attr (made before tasks existed) resumes as ``levels``; a
    trading launch of the same symbol is another study and leaves it alone."""
    import sqlite3

    assert launch_levels(sample_data, 2) == 0
    with sqlite3.connect(workdir / "studies.db") as db:
        removed = db.execute("DELETE FROM study_user_attributes WHERE key = 'task'").rowcount
    assert removed == 1
    assert launch_levels(sample_data, 4) == 0  # resumed: no refusal
    old = optuna.load_study(study_name="fake:AAPL:v20-t20-h1", storage="sqlite:///studies.db")
    assert len(old.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == 4
    assert "task" not in old.user_attrs
    assert launch_fake(sample_data, 3) == 0  # --task trading: its own study
    trading = optuna.load_study(
        study_name="fake:AAPL:v20-t20-h1:trading", storage="sqlite:///studies.db"
    )
    assert trading.user_attrs["task"]["name"] == "trading"
    assert len(old.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == 4
