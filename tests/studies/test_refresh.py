"""Refresh: bars appended to a CSV start the next period's study, warm-started from the last
period's confirmed candidates, with the last period's record kept in the store's history; an
edited past bar, a study made before refreshes, or ``--no-refresh`` is refused as before."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import optuna
import pandas as pd
import pytest

from tests.conftest import launch_fake, run_cli

BASE = "fake:AAPL:v20-t20-h1"
STORAGE = "sqlite:///studies.db"
FIRST_ROWS = 590  # of the sample's 600: the other 10 are the bars appended later
FAST = ("--task", "levels", "--confirm-candidates", "3", "--confirm-draws", "2")


def launch(data: Path, n_trials: int, *extra: str) -> int:
    return launch_fake(data, n_trials, *FAST, *extra)


@pytest.fixture
def data(workdir: Path, sample_data: Path) -> Path:
    """``<workdir>/data/AAPL.csv``: the sample's first :data:`FIRST_ROWS` bars."""
    folder = workdir / "data"
    folder.mkdir()
    shutil.copy(sample_data / "AAPL.csv", folder / "full.csv.txt")
    pd.read_csv(folder / "full.csv.txt").head(FIRST_ROWS).to_csv(folder / "AAPL.csv", index=False)
    return folder


def append_bars(data: Path) -> pd.DataFrame:
    """Append the sample's remaining bars to ``AAPL.csv``, the earlier rows byte for byte."""
    full = pd.read_csv(data / "full.csv.txt")
    with open(data / "AAPL.csv", "a") as handle:
        handle.write(full.iloc[FIRST_ROWS:].to_csv(index=False, header=False))
    return full


def period_of(frame: pd.DataFrame, rows: int) -> str:
    """The tag of ``rows`` bars: the date of the last validation target (20 test bars after)."""
    return str(pd.Timestamp(frame["timestamp"].iloc[rows - 21]).date())


def study(name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=STORAGE)


def names() -> list[str]:
    return sorted(s.study_name for s in optuna.get_all_study_summaries(STORAGE))


def test_appended_bars_start_the_next_period_from_the_last_candidates(
    workdir: Path, data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert launch(data, 6) == 0
    old = study(BASE)
    listed = old.user_attrs["confirmation"]["candidates"]
    by_number = {t.number: t.params for t in old.trials}
    ranked = sorted(listed, key=lambda c: c["confirmed_price_mae"])
    expected = [by_number[c["trial_number"]] for c in ranked]
    assert len(expected) == 3
    live = workdir / "store" / "fake" / "AAPL.json"
    old_record = json.loads(live.read_text())
    assert old_record["metadata"]["study_name"] == BASE

    full = append_bars(data)
    capsys.readouterr()
    assert launch(data, 5) == 0
    out = capsys.readouterr().out
    new = f"{BASE}@{period_of(full, len(full))}"
    old_period = period_of(full, FIRST_ROWS)
    assert (
        f"bars appended since {BASE} ({FIRST_ROWS} -> {len(full)} rows): starting {new} "
        "(the last period's 3 confirmed candidates queued first); its record kept as "
    ) in out
    assert names() == [BASE, new]

    trials = sorted(study(new).trials, key=lambda t: t.number)
    assert [t.params for t in trials[:3]] == expected  # the last period's candidates first
    assert all(t.user_attrs["source"].startswith("refresh:") for t in trials[:3])
    known_good = {"drift": 0.0, "noise": 0.0}  # then the known-good setting, unless queued
    assert known_good in expected or trials[3].params == known_good
    assert sum(t.params == known_good for t in trials) == 1
    assert len(study(new).get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == 5
    assert study(new).user_attrs["period"] == period_of(full, len(full))
    assert study(new).user_attrs["previous_period"] == BASE
    assert len(old.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == 6  # untouched

    kept = workdir / "store" / "fake" / "history" / "AAPL" / f"{old_period}.json"
    assert json.loads(kept.read_text()) == old_record
    assert f"its record kept as {kept.relative_to(workdir)}" in out  # --store store
    assert json.loads(live.read_text())["metadata"]["study_name"] == new

    assert run_cli("status") == 0
    status = capsys.readouterr().out
    periods = f"{old_period} ({BASE}), {period_of(full, len(full))} ({new})"
    assert f"{BASE} periods: {periods}; current {new}" in status
    assert any(line.startswith(new) for line in status.splitlines())

    assert launch(data, 7) == 0  # the same data again: the new period resumes
    assert "bars appended" not in capsys.readouterr().out
    assert names() == [BASE, new]
    assert len(study(new).get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == 7
    assert run_cli("export", "--model", "fake", "--all", "--confirm-candidates", "3",
                   "--confirm-draws", "2") == 0  # fmt: skip
    assert json.loads(live.read_text())["metadata"]["study_name"] == new  # not the old period


def refusal(capsys: pytest.CaptureFixture[str]) -> str:
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    return errors[0]


def test_an_edited_past_bar_is_refused_with_the_delete_hint(
    workdir: Path, data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert launch(data, 3) == 0
    append_bars(data)
    frame = pd.read_csv(data / "AAPL.csv")
    frame.loc[100, "close"] *= 1.01  # a bar the study used
    frame.to_csv(data / "AAPL.csv", index=False)
    capsys.readouterr()
    assert launch(data, 3) == 2
    line = refusal(capsys)
    assert f"refusing to resume study {BASE}: the data changed" in line
    edited = f"a row of the {FIRST_ROWS} it used was edited or removed, not only bars appended"
    assert edited in line
    assert f"optuna delete-study --storage '{STORAGE}' --study-name '{BASE}'" in line
    assert names() == [BASE]
    assert not (workdir / "store" / "fake" / "history").exists()


def test_no_refresh_refuses_appended_bars(
    workdir: Path, data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert launch(data, 3) == 0
    append_bars(data)
    capsys.readouterr()
    assert launch(data, 3, "--no-refresh") == 2
    line = refusal(capsys)
    assert "refusing to resume" in line and "data changed" in line and "delete-study" in line
    assert names() == [BASE]


def test_a_study_made_before_refreshes_is_refused_as_before(
    workdir: Path, data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without ``data_rows`` an append cannot be told from an edit: today's refusal."""
    assert launch(data, 3) == 0
    with sqlite3.connect(workdir / "studies.db") as db:
        removed = db.execute("DELETE FROM study_user_attributes WHERE key = 'data_rows'")
        assert removed.rowcount == 1
    append_bars(data)
    capsys.readouterr()
    assert launch(data, 3) == 2
    line = refusal(capsys)
    assert "refusing to resume" in line and "data changed" in line and "delete-study" in line
    assert names() == [BASE]


def test_a_period_never_finalised_passes_on_its_best_trials() -> None:
    """Without a confirmation (a launch stopped by --timeout) the best trials are queued, and
    launch's line says they are not confirmed."""
    from optuna.distributions import FloatDistribution

    from studies.refresh import Period, Refresh, previous_candidates

    storage = optuna.storages.InMemoryStorage()
    old = optuna.create_study(study_name=BASE, storage=storage)
    space = {"drift": FloatDistribution(-0.02, 0.02), "noise": FloatDistribution(0.0, 0.05)}
    for value, drift in ((3.0, 0.01), (1.0, -0.01), (2.0, 0.0)):
        params = {"drift": drift, "noise": 0.01}
        old.add_trial(optuna.trial.create_trial(params=params, distributions=space, value=value))
    queued = previous_candidates(storage, BASE)
    assert [p["drift"] for p, _ in queued] == [-0.01, 0.0, 0.01]  # best first pass first
    line = Refresh(Period(BASE, None), f"{BASE}@x", 590, 600, queued).line()
    assert "the last period's 3 best trials (not confirmed) queued first" in line
