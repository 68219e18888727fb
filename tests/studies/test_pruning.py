"""Pruning across validation windows: pruned trials count in the budget, are never confirmed
or exported, and an unpruned trial's value equals one scoring of the whole window."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import TrialState

from objectives.bars import load_bars
from objectives.evaluator import evaluate, load_backend
from objectives.windows import WindowSpec
from studies.context import StudyContext
from tests.conftest import launch_fake, run_cli

NAME = "fake:AAPL:v20-t20-h1"


def launch_levels(data, n_trials, *extra):
    """``launch_fake`` under ``--task levels``: these tests are about the search, not the task."""
    return launch_fake(data, n_trials, "--task", "levels", *extra)


def test_a_pruned_trial_is_never_confirmed_or_exported(workdir: Path, sample_data: Path, capsys):
    assert launch_levels(sample_data, 40, "--prune", "on") == 0
    study = optuna.load_study(study_name=NAME, storage="sqlite:///studies.db")
    pruned = study.get_trials(states=(TrialState.PRUNED,))
    complete = study.get_trials(states=(TrialState.COMPLETE,))
    assert pruned and len(pruned) + len(complete) == 40  # both count in the budget
    assert all(t.user_attrs["pruned_after_windows"] in (5, 10, 15) for t in pruned)
    record = json.loads((workdir / "store" / "fake" / "AAPL.json").read_text())
    pruned_numbers = {t.number for t in pruned}
    assert record["metadata"]["trial_number"] not in pruned_numbers
    confirmed = {c["trial_number"] for c in record["metadata"]["selection"]["candidates"]}
    assert not confirmed & pruned_numbers
    # a complete trial's chunked value is the whole window's value, bit for bit
    ctx = StudyContext(load_backend("fake"), load_bars(sample_data, "AAPL"), WindowSpec())
    for trial in complete[:5]:
        whole = evaluate(ctx.search_evaluator, ctx.bars, ctx.windows.validation,
                         ctx.backend.space.from_config(trial.user_attrs["config"]), 0)  # fmt: skip
        assert whole.metrics.price_mae == trial.value
        np.testing.assert_array_equal(whole.forecast, trial.user_attrs["val_forecasts"])
    capsys.readouterr()
    assert run_cli("status", "--wide") == 0
    header, _, row = capsys.readouterr().out.splitlines()[:3]
    cells = dict(zip(header.split(), row.split(), strict=False))
    assert cells["pruned"] == str(len(pruned)) and cells["complete"] == str(len(complete))
