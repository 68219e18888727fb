"""The typed readers of study and trial attrs: a study of an older version (keys missing) reads
the defaults it means; a current one reads what was written under the key constants."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import FloatDistribution

from studies import attrs as keys
from studies.attrs import StudyAttrs, TrialAttrs, Winner

SCORES = {"price_mae": 2.0, "return_mae": 0.02, "latency_s": 0.5, "naive_price_mae": 1.0,
          "beats_naive": False}  # fmt: skip


def study(name: str, user_attrs: dict) -> optuna.Study:
    made = optuna.create_study(study_name=name, storage=optuna.storages.InMemoryStorage())
    for key, value in user_attrs.items():
        made.set_user_attr(key, value)
    return made


def test_an_old_study_without_attrs_reads_the_defaults_it_means() -> None:
    old = StudyAttrs.of(study("toto:AAPL:v20-t20-h1", {}))
    assert (old.model, old.symbol, old.metric, old.seed) == ("toto", "AAPL", "price_mae", 0)
    assert not old.made_by_optimise and old.uid is None
    assert old.sources is None and old.windows is None and old.task is None
    assert old.winner is None and old.test_scores == [] and old.export_path is None
    with pytest.raises(KeyError):
        old.recorded_symbol  # noqa: B018 - the attr itself, for callers that need it
    bare = StudyAttrs.of(study("oddname", {}))
    assert (bare.model, bare.symbol) == ("oddname", "")


def test_a_current_study_reads_what_was_written_under_the_keys() -> None:
    winner = {"study_name": "s", "trial_number": 3, "objective": "return_mae",
              "validation": SCORES, "test": SCORES, "confirmed_se": 0.01,
              "warnings": ["w"]}  # fmt: skip
    written = {
        keys.UID: "abc", keys.MODEL: "kronos", keys.SYMBOL: "BTCUSD", keys.METRIC: "crps",
        keys.SEED: 7, keys.SOURCES: {"checkpoint": "c"}, keys.WINDOWS: {"val_window": 5},
        keys.STORE: "/s", keys.ARTIFACT_STORE: "/s/.artifacts", keys.WINNER: winner,
        keys.TEST_SCORES: [{"round": "r"}],
    }  # fmt: skip
    got = StudyAttrs.of(study("toto:AAPL:v20-t20-h1", written))
    assert (got.model, got.symbol, got.metric, got.seed, got.uid) == (
        "kronos", "BTCUSD", "crps", 7, "abc",
    )  # fmt: skip
    assert got.made_by_optimise and got.recorded_symbol == "BTCUSD"
    assert got.sources == {"checkpoint": "c"} and got.recorded_windows == {"val_window": 5}
    assert got.store == "/s" and got.artifact_store == "/s/.artifacts"
    assert got.test_scores == [{"round": "r"}]
    assert got.winner is not None
    assert (got.winner.study_name, got.winner.trial_number, got.winner.objective) == (
        "s", 3, "return_mae",
    )  # fmt: skip
    assert got.winner.validation.price_mae == 2.0 and got.winner.test.beats_naive is False
    assert got.winner.validation_latency_s == 0.5 and got.winner.warnings == ["w"]
    assert got.winner.confirmed_se("return_mae") == 0.01


def test_an_old_winner_attr_reads_its_defaults() -> None:
    """Winners exported before ``objective``, ``confirmed_se`` and ``warnings``."""
    old = Winner({"study_name": "s", "trial_number": 1, "validation": SCORES, "test": SCORES,
                  "confirmed_price_mae_se": 0.2})  # fmt: skip
    assert old.objective == "price_mae" and old.warnings == []
    assert old.confirmed_se("price_mae") == 0.2 and old.confirmed_se("return_mae") is None
    assert StudyAttrs("x", {keys.WINNER: {}}).winner is None  # empty: never exported


def test_trial_attrs() -> None:
    trial = optuna.trial.create_trial(
        params={"x": 0.5}, distributions={"x": FloatDistribution(0, 1)}, value=1.0,
        user_attrs={keys.CONFIG: {"x": 0.5}, keys.TRIAL_COST_S: 1.25, "price_mae": 1.0,
                    keys.naive_key("price_mae"): 2, "return_mae": True},
    )  # fmt: skip
    got = TrialAttrs.of(trial)
    assert got.config == {"x": 0.5} and got.trial_cost_s == 1.25
    assert got.naive("price_mae") == 2.0 and got.naive("crps") is None
    assert got.metrics(("price_mae", "return_mae", "crps")) == {"price_mae": 1.0}  # no bools
    old = TrialAttrs.of(optuna.trial.create_trial(value=1.0))
    assert old.config is None and old.trial_cost_s is None and old.val_forecasts is None
