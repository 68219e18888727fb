"""The test window is scored once per best trial, never used for selection, and exported."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import numpy as np
import optuna
import pytest

from objectives.bars import load_bars
from objectives.evaluator import evaluate, load_backend
from objectives.tasks import LEVELS
from objectives.windows import WindowSpec
from storage.database import Database
from studies.context import StudyContext
from studies.finalise import best_trial, finalise
from studies.open import open_study
from studies.worker import WorkerSettings, run_study
from tests.conftest import launch_fake, run_cli

NAME = "fake:AAPL:v20-t20-h1:trading"
LEVELS_NAME = "fake:AAPL:v20-t20-h1"


def study() -> optuna.Study:
    return optuna.load_study(study_name=NAME, storage="sqlite:///studies.db")


def test_launch_scores_the_best_trial_once_and_exports_it(workdir: Path, sample_data: Path):
    assert launch_fake(sample_data, 6) == 0
    scores = study().user_attrs["test_scores"]
    assert len(scores) == 1
    assert scores[0]["trial_number"] == study().user_attrs["winner"]["trial_number"]
    assert set(scores[0]) >= {
        "price_mae",
        "return_mae",
        "latency_s",
        "naive_price_mae",
        "scored_at",
    }
    record = json.loads((workdir / "store" / "fake" / "AAPL.json").read_text())
    assert record["metadata"]["trial_number"] == scores[0]["trial_number"]
    assert record["test"]["price_mae"] == scores[0]["price_mae"]
    assert record["windows"] == {"val_window": 20, "test_window": 20, "forecast_horizon": 1}
    assert record["config"]["name"] and set(record["config"]) >= {"drift", "noise"}
    best = json.loads((workdir / "store" / "best" / "AAPL.json").read_text())
    assert best["metadata"].pop("best_selection")["compared"][0]["model"] == "fake"
    assert best.pop("config_path") == "store/fake/AAPL.json"  # the trading code's keys
    for key in (
        "selection_metric",
        "selection_value",
        "candidate_pct_return_mae",
        "improvement_pct",
    ):
        best["metadata"].pop(key)
    assert best == record
    assert "sqlite:///studies.db" == record["metadata"]["storage"]


def test_the_dashboard_shows_the_headline_first_and_the_note_in_5_digits(
    workdir: Path, sample_data: Path
) -> None:
    from optuna_dashboard._note import get_note

    assert launch_fake(sample_data, 3) == 0
    note = get_note(study())
    numbers = re.findall(r"\| (-?\d+\.\d+(?:e-?\d+)?) ", note)
    assert numbers and max(len(n.lstrip("-0.").replace(".", "")) for n in numbers) <= 5
    assert "| price MAE (price units) | return MAE (fraction of the price)" in note

    from studies.headline import KEYS

    (frozen,) = optuna.storages.RDBStorage("sqlite:///studies.db").get_all_studies()
    attrs = frozen.user_attrs  # in the order the dashboard lists them: as first written
    assert list(attrs)[: len(KEYS)] == list(KEYS)  # written first: the dashboard's first page
    assert attrs["val confirmed"].startswith("return_mae ")
    assert "% of the price (first pass " in attrs["val confirmed"]
    assert attrs["test (once)"].endswith("%) of the price") and "(naive " in attrs["test (once)"]
    assert attrs["test price MAE"].endswith(") in price units")


def test_export_again_without_a_new_best_does_not_rescore(workdir: Path, sample_data: Path):
    assert launch_fake(sample_data, 4) == 0
    assert launch_fake(sample_data, 4) == 0
    assert run_cli("export", "--model", "fake", "--symbols", "AAPL", "--data-dir", sample_data) == 0
    assert len(study().user_attrs["test_scores"]) == 1


def test_a_new_best_after_more_trials_is_scored_once(workdir: Path, sample_data: Path):
    assert launch_fake(sample_data, 3) == 0
    for target in (15, 30, 45):
        assert launch_fake(sample_data, target) == 0
        assert launch_fake(sample_data, target) == 0
    scores = study().user_attrs["test_scores"]
    assert len(scores) <= 4  # at most one scoring per launch that changed the candidates
    assert len({s["round"] for s in scores}) == len(scores)  # each round scored once
    record = json.loads((workdir / "store" / "fake" / "AAPL.json").read_text())
    assert scores[-1]["trial_number"] == record["metadata"]["trial_number"]
    assert scores[-1]["price_mae"] == record["test"]["price_mae"]


def test_concurrent_finalisers_score_once(workdir: Path, sample_data: Path):
    url = "sqlite:///studies.db"
    backend = load_backend("fake")
    scored = []

    class CountingBackend:
        name = backend.name
        checkpoint_id = backend.checkpoint_id
        space = backend.space

        def uncached(self):  # live-latency timing is not scoring
            return backend

        def evaluator(self, bars, task=LEVELS, horizon=1):
            inner = backend.evaluator(bars, task, horizon)

            class Counting:
                def __init__(self) -> None:
                    self.task, self.horizon = inner.task, inner.horizon

                def forecast(self, targets, config, seed):
                    scored.append((int(targets[-1]), config))
                    return inner.forecast(targets, config, seed)

                def forecast_quantiles(self, targets, config, seed, quantiles):  # the picture
                    return inner.forecast_quantiles(targets, config, seed, quantiles)

            return Counting()

    bars = load_bars(sample_data, "AAPL")
    ctx = StudyContext(CountingBackend(), bars, WindowSpec())
    db = Database.open(url)
    s = open_study(db.optuna, ctx)
    run_study(s, ctx, db.ledger, 5, WorkerSettings(progress=False))
    scored.clear()
    results = []

    def finalise_in_thread() -> None:
        results.append(
            finalise(
                s,
                StudyContext(CountingBackend(), bars, WindowSpec()),
                Database.open(url).ledger,  # a handle of its own, as another process has
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
    on_test = [config for last, config in scored if last == len(bars) - 1]
    default = backend.space.trading_default()
    # the test window was forecast once by the winner, once by the trading code's defaults
    assert sorted(config == default for config in on_test) == [False, True]
    assert len({json.dumps(r.record.to_json(), sort_keys=True) for r in results}) == 1


def test_search_never_reads_the_test_window(workdir: Path, sample_data: Path):
    """Trial metrics do not move when every test-window bar changes (no leaked test data)."""
    backend = load_backend("fake")
    bars = load_bars(sample_data, "AAPL")
    ctx = StudyContext(backend, bars, WindowSpec())
    changed = load_bars(sample_data, "AAPL")
    prices = changed.prices.copy()
    prices[ctx.windows.test[0] :] *= np.random.default_rng(1).uniform(0.5, 1.5, (20, 1))
    object.__setattr__(changed, "prices", prices)
    other = StudyContext(backend, changed, WindowSpec())
    assert other.search_evaluator is not None
    assert len(other.bars.head(other.windows.validation_end)) == ctx.windows.test[0]
    config = backend.space.from_config({"drift": 0.001, "noise": 0.01})
    a = ctx.search_evaluator.forecast_close(ctx.windows.validation, config, 3)
    b = other.search_evaluator.forecast_close(other.windows.validation, config, 3)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(IndexError):  # the search evaluator holds no test rows at all
        ctx.search_evaluator.bars.close[ctx.windows.test[0]]


def test_best_trial_ignores_test_scores(workdir: Path, sample_data: Path):
    assert launch_fake(sample_data, 6) == 0
    s = study()
    assert (
        best_trial(s).number
        == min(
            s.get_trials(states=(optuna.trial.TrialState.COMPLETE,)), key=lambda t: t.value
        ).number
    )


def test_the_record_reports_the_confirmed_mean_not_the_luckiest_draw(
    workdir: Path, sample_data: Path
):
    assert launch_fake(sample_data, 12, "--task", "levels") == 0
    record = json.loads((workdir / "store" / "fake" / "AAPL.json").read_text())
    selection = record["metadata"]["selection"]
    assert len(selection["seeds"]) == 8 and len(selection["candidates"]) == 5
    assert record["validation"]["price_mae"] == selection["confirmed_price_mae"]
    assert selection["confirmed_price_mae_se"] >= 0
    winner = min(selection["candidates"], key=lambda c: c["confirmed_price_mae"])
    assert winner["trial_number"] == record["metadata"]["trial_number"]
    # the confirmed mean is a fresh re-scoring: recompute it from the seeds
    backend = load_backend("fake")
    bars = load_bars(sample_data, "AAPL")
    ctx = StudyContext(backend, bars, WindowSpec())
    config = backend.space.from_config({k: v for k, v in record["config"].items() if k != "name"})
    again = [
        evaluate(ctx.search_evaluator, bars, ctx.windows.validation, config, seed).metrics
        for seed in selection["seeds"]
    ]
    assert np.mean([m.price_mae for m in again]) == pytest.approx(
        selection["confirmed_price_mae"], rel=1e-12
    )
    assert isinstance(record["validation"]["beats_naive"], bool)
    assert isinstance(record["test"]["beats_naive"], bool)
    assert record["validation"]["latency_s"] > 0 and record["test"]["latency_s"] > 0
    assert record["metadata"]["latency"]["validation"]["window"] == 20


def test_trials_with_equal_parameters_have_equal_values(workdir: Path, sample_data: Path):
    assert launch_fake(sample_data, 6) == 0
    s = study()
    first = s.get_trials(states=(optuna.trial.TrialState.COMPLETE,))[0]
    s.enqueue_trial(first.params)
    assert launch_fake(sample_data, 7) == 0
    again = study().get_trials(states=(optuna.trial.TrialState.COMPLETE,))[-1]
    assert again.params == first.params and again.value == first.value
    assert again.user_attrs["duplicate_of"] == first.number


def test_a_winner_that_loses_to_naive_is_flagged_everywhere(
    workdir: Path, sample_data: Path, capsys: pytest.CaptureFixture[str]
):
    # the fake's known-good setting (drift 0, noise 0) is the naive forecast itself: it can tie
    # naive at best, and ties do not beat it
    assert launch_fake(sample_data, 1) == 0
    err = capsys.readouterr().err
    record = json.loads((workdir / "store" / "fake" / "AAPL.json").read_text())
    assert record["validation"]["beats_naive"] is False
    assert err.count("does not beat the naive forecast") == 1
    assert run_cli("status") == 0
    assert capsys.readouterr().err.count("does not beat the naive forecast") == 1
    assert run_cli("export", "--model", "fake", "--symbols", "AAPL", "--data-dir", sample_data) == 0
    assert capsys.readouterr().err.count("does not beat the naive forecast") == 1


def test_a_deleted_and_recreated_study_never_exports_its_predecessors_result(
    workdir: Path, sample_data: Path
):
    data = workdir / "data"
    data.mkdir()
    original = (sample_data / "AAPL.csv").read_text().splitlines()
    (data / "AAPL.csv").write_text("\n".join(original) + "\n")
    assert launch_fake(data, 6) == 0
    old = json.loads((workdir / "store" / "fake" / "AAPL.json").read_text())
    optuna.delete_study(study_name=NAME, storage="sqlite:///studies.db")
    (data / "AAPL.csv").write_text("\n".join(original[:-5]) + "\n")  # changed data
    assert launch_fake(data, 6) == 0
    new = json.loads((workdir / "store" / "fake" / "AAPL.json").read_text())
    assert new["metadata"]["data_fingerprint"] != old["metadata"]["data_fingerprint"]
    assert new["metadata"]["study_uid"] != old["metadata"]["study_uid"]
    assert len(study().user_attrs["test_scores"]) == 1
    assert new["metadata"]["created_at"] >= old["metadata"]["created_at"]


def test_a_dead_finalisers_claim_is_taken_over_at_once_and_export_repairs_the_study(
    workdir: Path, sample_data: Path
):
    import subprocess
    import sys
    import time

    from studies.confirm import candidates
    from studies.finalise import FinaliseSettings, _round_key, study_key

    backend = load_backend("fake")
    bars = load_bars(sample_data, "AAPL")
    ctx = StudyContext(backend, bars, WindowSpec())
    db = Database.open("sqlite:///studies.db")
    ledger = db.ledger
    s = open_study(db.optuna, ctx)
    run_study(s, ctx, ledger, 6, WorkerSettings(progress=False))
    # a finaliser that claimed the round and died (a real process, now gone)
    dead = subprocess.run(
        [sys.executable, "-c", "from studies.owners import this_worker; print(this_worker())"],
        capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[2],
    ).stdout.strip()  # fmt: skip
    settings = FinaliseSettings(lease_s=3600.0)
    chosen = candidates(s, settings.candidates)
    key, round_key = study_key(s, ctx), _round_key(chosen, settings)
    assert ledger.claim(key, round_key, chosen[0].number, f"{dead}:abcd", 3600.0).state == "won"
    started = time.monotonic()
    done = finalise(s, ctx, ledger, workdir / "store", "sqlite:///studies.db", settings)
    assert time.monotonic() - started < 30 and done.scored_here
    # a finaliser killed after completing its claim but before publishing: export repairs it
    s.set_user_attr("test_scores", [])
    s.set_user_attr("winner", None)
    assert run_cli("export", "--model", "fake", "--symbols", "AAPL", "--data-dir", sample_data,
                   "--task", "levels") == 0  # fmt: skip
    repaired = optuna.load_study(study_name=LEVELS_NAME, storage="sqlite:///studies.db").user_attrs
    assert len(repaired["test_scores"]) == 1 and repaired["winner"]["trial_number"] >= 0
