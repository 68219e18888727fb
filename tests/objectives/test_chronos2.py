"""Chronos-2: parity with the ``chronos-forecasting`` pipeline, the two stages, the space."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import objectives.chronos2 as chronos2
from models.chronos2 import random_pipeline, write_random_checkpoint
from models.exceptions import CheckpointError
from objectives.bars import load_bars
from objectives.chronos2 import Chronos2Settings, level_weights
from objectives.evaluator import evaluate
from objectives.exceptions import DataError
from objectives.tasks import LEVELS, TRADING

DATA = Path(__file__).resolve().parents[2] / "trainingdata"
TARGETS = np.array([60, 300, 301, 600])  # 60: a history shorter than every context searched


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> chronos2.Chronos2Backend:
    folder = tmp_path_factory.mktemp("chronos2") / "tiny"
    write_random_checkpoint(folder, "tiny", seed=3)
    return chronos2.load(str(folder))


@pytest.fixture(scope="module")
def bars():
    return load_bars(DATA, "AAPL")


def pipeline_quantiles(backend, context: torch.Tensor, levels: list[float]) -> np.ndarray:
    """The package's own answer: ``predict_quantiles`` on one context, step 1."""
    q, _ = backend.pipeline.predict_quantiles([context], prediction_length=1,
                                              quantile_levels=levels)  # fmt: skip
    return q[0][:, 0, :].double().numpy()  # (n_variates, len(levels))


@pytest.mark.parametrize("ctx", [128, 512])
def test_univariate_points_equal_the_pipelines_quantiles(backend, bars, ctx):
    ev = backend.evaluator(bars, TRADING)
    prices = torch.as_tensor(bars.prices, dtype=torch.float32)
    forecast = ev.forecast(
        TARGETS, {"context_length": ctx, "aggregation": "median", "use_multivariate": False}, seed=0
    )
    shifted = ev.forecast(
        TARGETS,
        {"context_length": ctx, "aggregation": "quantile_0.30", "use_multivariate": False},
        0,
    )
    for w, i in enumerate(TARGETS):
        for c, column in enumerate(TRADING.columns):
            col = ("open", "high", "low", "close").index(column)
            expected = pipeline_quantiles(backend, prices[max(0, i - ctx) : i, col], [0.5, 0.3])
            np.testing.assert_allclose(forecast.points[w, c, 0], expected[0, 0], rtol=1e-6)
            np.testing.assert_allclose(shifted.points[w, c, 0], expected[0, 1], rtol=1e-6)


def test_multivariate_and_mean_equal_the_pipeline(backend, bars):
    ev = backend.evaluator(bars, TRADING)
    settings = {"context_length": 256, "aggregation": "mean", "use_multivariate": True}
    forecast = ev.forecast(TARGETS, settings, seed=0)
    idx = [("open", "high", "low", "close").index(c) for c in TRADING.columns]
    prices = torch.as_tensor(bars.prices, dtype=torch.float32)
    for w, i in enumerate(TARGETS):
        raw = backend.pipeline.predict([prices[max(0, i - 256) : i, idx].T], prediction_length=1)
        expected = raw[0][:, :, 0].double().mean(dim=1).numpy()  # mean over the levels
        np.testing.assert_allclose(forecast.points[w, :, 0], expected, rtol=1e-6)
    alone = ev.forecast(TARGETS, {**settings, "use_multivariate": False}, seed=0)
    assert np.abs(alone.points - forecast.points).max() > 1e-5  # the columns enter together


def test_a_trial_reuses_stage_one_and_the_seed_changes_nothing(backend, bars):
    ev = backend.evaluator(bars, LEVELS)
    first = ev.forecast(TARGETS, {"context_length": 1024}, seed=0)
    again = ev.forecast(TARGETS, {"context_length": 1024, "aggregation": "quantile_0.70"}, 9)
    assert first.passes == len(TARGETS) and again.passes == 0
    assert np.array_equal(ev.forecast_close(TARGETS, {"context_length": 1024}, seed=5),
                          first.points[:, 0, 0])  # fmt: skip
    assert not np.array_equal(again.points, first.points)


def test_crps_reads_the_quantiles_weighted_by_their_mass(backend, bars):
    weights = level_weights(backend.levels)
    assert list(weights[:2]) == [50, 90] and set(weights[2:-2]) == {100}
    assert list(weights[-2:]) == [90, 50]  # proportional to the pipeline's masses
    ev = backend.evaluator(bars, LEVELS)
    scored = evaluate(ev, bars, TARGETS[1:3], Chronos2Settings(context_length=256), seed=0)
    assert np.isfinite(scored.metrics.value("crps")) and scored.metrics.value("crps") > 0
    q = ev.forecast_quantiles(TARGETS[1:3], {"context_length": 256}, 0, [0.5])
    assert np.allclose(q[:, 0], scored.paths.quantiles([0.5])[:, 0])


def test_config_round_trip_and_params():
    s = Chronos2Settings.from_config(
        {"context_length": 512, "aggregation": "quantile_0.35", "use_multivariate": True,
         "quantile_levels": [0.1, 0.5, 0.9], "prediction_length": 7}
    )  # fmt: skip
    assert s.to_config() == {
        "context_length": 512, "quantile_levels": [0.1, 0.35, 0.5, 0.9],
        "aggregation": "quantile_0.35", "use_multivariate": True,
    }  # fmt: skip
    assert Chronos2Settings.from_config(s.to_config()) == s
    with pytest.raises(DataError, match="median of the joint"):
        s.to_params()  # not a setting the search (or the trading code) runs
    run = Chronos2Settings.from_config({"context_length": 512})
    assert (run.aggregation, run.use_multivariate) == ("median", True)
    assert Chronos2Settings.from_params(run.to_params()) == run
    assert chronos2.SPACE.known_good() == [{"context_length": 512}]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"aggregation": "median"}, "lacks 'context_length'"),
        ({"context_length": 512, "aggregation": "trimmed"}, "aggregation 'trimmed'"),
        ({"context_length": 512, "aggregation": "quantile_0.33"}, "not on the grid"),
        ({"context_length": 512, "use_multivariate": "yes"}, "true or false"),
        ({"context_length": 512, "quantile_levels": [0.5, 2]}, "levels in (0, 1)"),
        ({"context_length": 0}, "at least 1"),
        ({"context_length": 512, "temperature": 1}, "unknown 'temperature'"),
    ],
)
def test_bad_configs_are_one_line_errors(config, message):
    with pytest.raises(DataError, match=None) as info:
        Chronos2Settings.from_config(config)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_folder_without_safetensors_or_a_chronos_config_is_refused(tmp_path):
    with pytest.raises(CheckpointError, match="safetensors only"):
        chronos2.load(str(tmp_path))
    (tmp_path / "model.safetensors").write_bytes(b"")
    (tmp_path / "config.json").write_text('{"architectures": ["TotoModel"]}')
    with pytest.raises(CheckpointError, match="not a Chronos-2 config"):
        chronos2.load(str(tmp_path))
    with pytest.raises(CheckpointError, match="unknown chronos2 preset"):
        random_pipeline("huge", 0)


def test_the_search_proposes_only_what_the_trading_code_runs():
    """Its ``resolve_chronos2_params`` reads ``context_length`` (and batch size), then forecasts
    the columns jointly and trades the 0.5 quantile: any other point or input mode in a record
    would be a setting it runs differently."""
    import optuna

    from objectives.chronos2.space import CONTEXT_LENGTHS, Chronos2Space

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(60):
        trial = study.ask()
        config = Chronos2Space().suggest(trial).to_config()
        assert config["aggregation"] == "median" and config["use_multivariate"] is True
        assert 0.5 in config["quantile_levels"]
        seen.add(config["context_length"])
        study.tell(trial, 0.0)
    assert seen == set(CONTEXT_LENGTHS)


#: the path the trading code asks Chronos-2 for, transcribed from lee101/stock-prediction at
#: c059b75e, ``backtest_test3_inline.py:2785-2797``::
#:
#:     chronos2_result = chronos2_wrapper.predict_ohlc(
#:         context_df=chronos2_df.copy(), symbol=symbol,
#:         prediction_length=7,                                   # line 2787
#:         ...)
#:     median_frame = chronos2_result.quantile_frames.get(0.5)
#:     pred_values = median_frame[key_to_predict.lower()].values
#:     chronos2_abs = float(pred_values[-1])                      # line 2797: the 7th step
TRADING_PREDICTION_LENGTH = 7


def test_the_trading_task_scores_the_path_the_trading_code_asks_for():
    from objectives.registry import spec
    from objectives.tasks import resolve_horizon

    assert spec("chronos2").default_horizon("trading") == TRADING_PREDICTION_LENGTH
    assert resolve_horizon(TRADING, "chronos2", None) == TRADING_PREDICTION_LENGTH
    assert resolve_horizon(LEVELS, "chronos2", None) == 1
    assert resolve_horizon(TRADING, "chronos2", 1) == 1  # --horizon still chooses
