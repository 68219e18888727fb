"""The Toto search space: enqueue the trading code's best, suggest, and round-trip params."""

from __future__ import annotations

import itertools
import json

import numpy as np
import optuna
import pytest

from objectives.exceptions import DataError
from objectives.toto.aggregation import FAMILIES, parse
from objectives.toto.space import GRIDS, NUM_SAMPLES, SEARCHED, TotoSpace, param_name
from tests.objectives.test_toto_aggregation import bits, trading_resolve

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _grid(name: str) -> list[float]:
    low, high, step = GRIDS[name]
    return [float(f"{v:.2f}") for v in np.arange(low, high + step / 2, step)]


def _all_params() -> list[dict]:
    """Every point of the aggregate grid (at one num_samples)."""
    out = []
    for family in SEARCHED:
        names = [param_name(family, a) for a in FAMILIES[family]]
        for values in itertools.product(*(_grid(n) for n in names)):
            out.append(
                {
                    "num_samples": 128,
                    "aggregate_family": family,
                    **dict(zip(names, values, strict=True)),
                }
            )
    return out


def test_known_good_is_enqueued_as_trimmed_mean_010_over_3072_samples() -> None:
    space = TotoSpace()
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    for params in space.known_good():
        study.enqueue_trial(params)
    trial = study.ask()
    config = space.suggest(trial).to_config()
    assert config == {
        "num_samples": 3072,
        "samples_per_batch": 512,
        "aggregate": "trimmed_mean_0.10",
    }
    study.tell(trial, 1.0)
    frozen = study.trials[0]
    assert frozen.params == space.known_good()[0]
    assert space.from_params(frozen.params).to_config() == config


def test_the_searched_families_are_those_the_trading_code_reads() -> None:
    assert set(SEARCHED) == {
        "mean",
        "median",
        "trimmed_mean",
        "lower_trimmed_mean",
        "upper_trimmed_mean",
        "quantile",
        "mean_minus_std",
        "mean_plus_std",
        "mean_quantile_mix",
    }
    described = TotoSpace().describe()
    assert "quantile_plus_std" not in described["params"]["aggregate_family"]["choices"]
    assert not any(name.startswith("quantile_plus_std") for name in described["params"])


def test_every_grid_point_gives_a_canonical_spec_the_trading_code_reads_the_same() -> None:
    space = TotoSpace()
    points = _all_params()
    assert len(points) == 2 + 45 + 90 + 90 + 91 + 30 + 30 + 91 * 19
    specs = set()
    for params in points:
        spec = space.from_params(params).to_config()["aggregate"]
        parsed = parse(spec)
        assert parsed.spec == spec
        names = [param_name(parsed.family, a) for a in FAMILIES[parsed.family]]
        assert (parsed.family, parsed.args) == (
            params["aggregate_family"],
            tuple(params[n] for n in names),
        )
        assert bits(trading_resolve(spec)) == bits((parsed.family, parsed.args))
        assert space.from_config({"num_samples": 128, "aggregate": spec}).to_params() == params
        specs.add(spec)
    assert len(specs) == len(points)


def test_optuna_grid_floats_give_the_grid_value() -> None:
    space = TotoSpace()
    params = {"num_samples": 128, "aggregate_family": "trimmed_mean"}
    config = space.from_params({**params, "trimmed_mean_fraction": 0.01 + 9 * 0.01}).to_config()
    assert config["aggregate"] == "trimmed_mean_0.10"


def test_suggested_configs_round_trip_through_trial_params() -> None:
    space = TotoSpace()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen = set()
    for _ in range(100):
        trial = study.ask()
        config = space.suggest(trial).to_config()
        study.tell(trial, 0.0)
        assert parse(config["aggregate"]).spec == config["aggregate"]
        assert config["num_samples"] in NUM_SAMPLES
        assert space.from_params(study.trials[-1].params).to_config() == config
        assert space.from_config(config).to_params() == pytest.approx(study.trials[-1].params)
        seen.add(parse(config["aggregate"]).family)
        family = study.trials[-1].params["aggregate_family"]
        extra = set(study.trials[-1].params) - {"num_samples", "aggregate_family"}
        assert all(name.startswith(family + "_") for name in extra)
    assert seen == set(SEARCHED)


@pytest.mark.parametrize(
    ("spec", "family", "args"),
    [
        ("trimmed_mean_0.10", "trimmed_mean", {"fraction": 0.10}),
        ("trimmed_mean_10", "trimmed_mean", {"fraction": 0.10}),
        ("trimmed_mean_5", "trimmed_mean", {"fraction": 0.05}),
        ("lower_trimmed_mean_15", "lower_trimmed_mean", {"fraction": 0.15}),
        ("upper_trimmed_mean_20", "upper_trimmed_mean", {"fraction": 0.20}),
        ("upper_trimmed_mean_0.9", "upper_trimmed_mean", {"fraction": 0.90}),
        ("p10", "quantile", {"q": 0.10}),
        ("p90", "quantile", {"q": 0.90}),
        ("quantile_15", "quantile", {"q": 0.15}),
        ("quantile_plus_std_0.15_0.12", "quantile", {"q": 0.12}),
        ("median", "median", {}),
        ("mean", "mean", {}),
        ("", "mean", {}),
        ("mean_minus_std_0.5", "mean_minus_std", {"s": 0.50}),
        ("mean_plus_std_1.25", "mean_plus_std", {"s": 1.25}),
        ("mean_quantile_mix_15_0.3", "mean_quantile_mix", {"q": 0.15, "w": 0.30}),
        ("MEAN_QUANTILE_MIX_0.25_0.5 ", "mean_quantile_mix", {"q": 0.25, "w": 0.50}),
    ],
)
def test_trading_code_specs_map_to_the_params_of_the_same_function(
    spec: str, family: str, args: dict[str, float]
) -> None:
    space = TotoSpace()
    params = space.from_config({"num_samples": 3072, "aggregate": spec}).to_params()
    assert params == {
        "num_samples": 3072,
        "aggregate_family": family,
        **{param_name(family, a): v for a, v in args.items()},
    }
    config = space.from_params(params).to_config()
    assert bits(trading_resolve(config["aggregate"])) == bits(trading_resolve(spec))


@pytest.mark.parametrize(
    "spec",
    [
        "quantile_0.123",
        "quantile_0.150000001",
        "trimmed_mean_0",
        "trimmed_mean_0.46",
        "lower_trimmed_mean_0.95",
        "upper_trimmed_mean_1",
        "mean_plus_std_1.55",
        "mean_minus_std_-0.5",
        "mean_quantile_mix_0.2_1.7",
        "quantile_1.5",  # 1.5% == 0.015
    ],
)
def test_specs_off_the_grid_are_refused(spec: str) -> None:
    with pytest.raises(DataError, match="grid"):
        TotoSpace().from_config({"num_samples": 128, "aggregate": spec}).to_params()


def test_bad_num_samples_and_specs_are_refused() -> None:
    with pytest.raises(DataError, match="num_samples"):
        TotoSpace().from_config({"num_samples": 100, "aggregate": "mean"}).to_params()
    with pytest.raises(DataError, match="aggregate"):
        TotoSpace().from_config({"num_samples": 128, "aggregate": "trimmed_mean_0.5"}).to_params()
    with pytest.raises(DataError, match="quantile_plus_std"):
        TotoSpace().from_params(
            {
                "num_samples": 128,
                "aggregate_family": "quantile_plus_std",
                "quantile_plus_std_q": 0.5,
                "quantile_plus_std_s": 0.5,
            }
        ).to_config()
    with pytest.raises(DataError, match="grid"):
        TotoSpace().from_params(
            {"num_samples": 128, "aggregate_family": "quantile", "quantile_q": 0.123}
        ).to_config()


def test_missing_params_are_named() -> None:
    with pytest.raises(DataError, match="trimmed_mean_fraction"):
        TotoSpace().from_params({"num_samples": 64, "aggregate_family": "trimmed_mean"}).to_config()


def test_describe_is_json_and_names_the_aggregate_semantics() -> None:
    described = json.loads(json.dumps(TotoSpace().describe()))
    assert described["params"]["num_samples"]["choices"] == list(NUM_SAMPLES)
    assert described["params"]["trimmed_mean_fraction"]["when"] == "aggregate_family=trimmed_mean"
    assert described["params"]["trimmed_mean_fraction"]["high"] == 0.45
    assert described["params"]["lower_trimmed_mean_fraction"]["high"] == 0.90
    assert described["params"]["mean_plus_std_s"]["step"] == 0.05
    semantics = described["aggregate_semantics"]
    assert "v2" in semantics and "lower_trimmed_mean_F keeps the lowest" in semantics
    assert described["known_good_from"] == {"num_samples": 3072, "aggregate": "trimmed_mean_0.10"}
