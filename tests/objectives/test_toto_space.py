"""The Toto search space: enqueue the trading code's best, suggest, and round-trip params."""

from __future__ import annotations

import json

import optuna
import pytest

from objectives.exceptions import DataError
from objectives.toto.aggregation import parse
from objectives.toto.space import NUM_SAMPLES, TotoSpace

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_known_good_is_enqueued_as_trimmed_mean_010_over_3072_samples() -> None:
    space = TotoSpace()
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    for params in space.known_good():
        study.enqueue_trial(params)
    trial = study.ask()
    config = space.suggest(trial)
    assert config == {"num_samples": 3072, "aggregate": "trimmed_mean_0.10"}
    study.tell(trial, 1.0)
    frozen = study.trials[0]
    assert frozen.params == space.known_good()[0]
    assert space.config_from_params(frozen.params) == config


def test_suggested_configs_round_trip_through_trial_params() -> None:
    space = TotoSpace()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen = set()
    for _ in range(100):
        trial = study.ask()
        config = space.suggest(trial)
        study.tell(trial, 0.0)
        parse(config["aggregate"])
        assert config["num_samples"] in NUM_SAMPLES
        assert space.config_from_params(study.trials[-1].params) == config
        assert space.params_from_config(config) == pytest.approx(study.trials[-1].params)
        seen.add(parse(config["aggregate"]).family)
        family = study.trials[-1].params["aggregate_family"]
        extra = set(study.trials[-1].params) - {"num_samples", "aggregate_family"}
        assert all(name.startswith(family + "_") for name in extra)
    assert len(seen) == 10


def test_params_off_the_grid_are_refused() -> None:
    with pytest.raises(DataError, match="grid"):
        TotoSpace().params_from_config({"num_samples": 64, "aggregate": "quantile_0.123"})
    with pytest.raises(DataError, match="num_samples"):
        TotoSpace().params_from_config({"num_samples": 100, "aggregate": "mean"})


def test_missing_params_are_named() -> None:
    with pytest.raises(DataError, match="trimmed_mean_fraction"):
        TotoSpace().config_from_params({"num_samples": 64, "aggregate_family": "trimmed_mean"})


def test_describe_is_json() -> None:
    described = json.loads(json.dumps(TotoSpace().describe()))
    assert described["params"]["num_samples"]["choices"] == list(NUM_SAMPLES)
    assert described["params"]["trimmed_mean_fraction"]["when"] == "aggregate_family=trimmed_mean"
