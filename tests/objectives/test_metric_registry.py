"""The metric registry: every metric against a hand computation, the trading code's rolling
calibration transcribed, CRPS against its definition, paths scored step by step."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from objectives.bars import Bars
from objectives.forecasts import Draws, Forecast
from objectives.metrics import (
    CALIBRATION_PAIRS,
    METRIC_NAMES,
    METRICS,
    calibrate,
    crps_weighted,
    score,
    score_close,
)


def bars_of(close: np.ndarray) -> Bars:
    close = np.asarray(close, dtype=np.float64)
    prices = np.stack([close * 1.001, close * 1.02, close * 0.98, close], axis=1)
    stamps = np.datetime64("2021-01-01", "ns") + np.arange(len(close)) * np.timedelta64(1, "D")
    return Bars("TEST", stamps, prices, None, None)


def trading_calibrate_signal(predictions: np.ndarray, actual: np.ndarray) -> tuple[float, float]:
    """backtest_test3_inline.calibrate_signal, transcribed: polyfit degree 1 over the matched
    pairs when more than one, else slope 1 and intercept 0."""
    matched = min(len(predictions), len(actual))
    if matched > 1:
        slope, intercept = np.polyfit(predictions[:matched], actual[:matched], 1)
        return float(slope), float(intercept)
    return 1.0, 0.0


def test_every_registered_metric_has_a_direction_and_a_kind() -> None:
    assert set(METRIC_NAMES) >= {
        "price_mae", "return_mae", "direction_accuracy", "calibrated_return_mae", "crps"
    }  # fmt: skip
    for metric in METRICS.values():
        assert metric.direction in ("minimize", "maximize")
        assert metric.needs in ("points", "draws")
    assert METRICS["direction_accuracy"].better(0.6, 0.5)
    assert METRICS["return_mae"].better(0.01, 0.02)


def test_direction_accuracy_counts_the_sign_of_each_predicted_move() -> None:
    close = np.array([100.0, 101.0, 99.0, 100.0, 102.0])
    targets = np.array([2, 3, 4])  # actual moves: down, up, up
    forecast = np.array([100.5, 100.5, 99.5])  # predicted: down, up, down
    metrics = score_close(close, targets, forecast)
    assert metrics.value("direction_accuracy") == pytest.approx(2 / 3)
    assert metrics.naive("direction_accuracy") == 0.0  # a zero move has no sign


def test_calibrated_return_mae_is_the_trading_codes_fit_walk_forward() -> None:
    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(0.01 * rng.standard_normal(40)))
    targets = np.arange(10, 40)
    forecast = close[targets - 1] * (1 + 0.5 * (close[targets] / close[targets - 1] - 1)
                                     + 0.002 * rng.standard_normal(len(targets)))  # fmt: skip
    predicted = forecast / close[targets - 1] - 1
    actual = close[targets] / close[targets - 1] - 1
    expected = []
    for k in range(len(targets)):
        earlier = list(range(max(0, k - CALIBRATION_PAIRS), k))  # known before target k
        slope, intercept = trading_calibrate_signal(predicted[earlier], actual[earlier])
        expected.append(abs(slope * predicted[k] + intercept - actual[k]))
    value = score_close(close, targets, forecast).value("calibrated_return_mae")
    assert value == pytest.approx(float(np.mean(expected)), rel=1e-12)
    # the first forecast has no earlier pair: uncalibrated, exactly its return error
    first = score_close(close, targets[:1], forecast[:1])
    assert first.value("calibrated_return_mae") == pytest.approx(first.return_mae)


def test_calibration_never_reads_a_later_actual() -> None:
    rng = np.random.default_rng(4)
    close = 100 * np.exp(np.cumsum(0.01 * rng.standard_normal(30)))
    targets = np.arange(5, 30)
    forecast = close[targets - 1] * 1.001
    base = score_close(close, targets, forecast).per_target["calibrated_return_mae"][:, 0, 0]
    changed = close.copy()
    changed[20:] *= 1.5  # targets from row 20 on change; forecasts of rows < 20 must not
    moved = score_close(changed, targets, forecast).per_target["calibrated_return_mae"][:, 0, 0]
    unaffected = targets < 20
    np.testing.assert_array_equal(base[unaffected], moved[unaffected])


def test_calibrate_falls_back_where_least_squares_cannot_fit() -> None:
    assert calibrate(np.zeros(6), np.arange(6.0)) == (1.0, 0.0)
    assert calibrate(np.array([0.1]), np.array([0.2])) == (1.0, 0.0)
    assert calibrate(np.array([0.0, 1.0]), np.array([1.0, 3.0])) == pytest.approx((2.0, 1.0))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_crps_equals_its_definition_for_weighted_draws(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(9)
    w = rng.integers(1, 5, size=9).astype(float)
    y = 0.3
    p = w / w.sum()
    first = sum(pi * abs(xi - y) for xi, pi in zip(x, p, strict=True))
    spread = sum(
        pi * pj * abs(xi - xj)
        for (xi, pi), (xj, pj) in itertools.product(zip(x, p, strict=True), repeat=2)
    )
    assert crps_weighted(x, w, y) == pytest.approx(first - 0.5 * spread, rel=1e-12)
    assert crps_weighted(np.array([2.0]), np.ones(1), 0.5) == pytest.approx(1.5)


def test_crps_of_a_point_forecast_is_its_return_error() -> None:
    close = np.array([100.0, 101.0, 99.0, 100.0, 102.0])
    metrics = score_close(close, np.array([2, 3, 4]), np.array([100.5, 100.5, 101.0]))
    assert metrics.value("crps") == pytest.approx(metrics.return_mae)
    assert metrics.naive("crps") == pytest.approx(metrics.naive_return_mae)


def test_a_path_is_scored_step_by_step_on_step_wise_returns() -> None:
    rng = np.random.default_rng(7)
    bars = bars_of(100 * np.exp(np.cumsum(0.01 * rng.standard_normal(30))))
    origins = np.array([10, 11, 12])
    horizon = 3
    columns = ("close", "high")
    index = [3, 1]
    points = np.empty((3, 2, horizon))
    for w, o in enumerate(origins):
        for c, i in enumerate(index):
            points[w, c] = bars.prices[o - 1, i] * (1 + 0.01 * np.arange(1, horizon + 1))
    draws = tuple(Draws(points[w][None], np.ones(1)) for w in range(3))
    forecast = Forecast(origins, columns, points, draws)
    metrics = score(bars, forecast, "mean")
    last_step = score(bars, forecast, "last")
    by_hand_steps = []
    for h in range(horizon):
        errors = []
        for c, i in enumerate(index):
            for w, o in enumerate(origins):
                f_prev = bars.prices[o - 1, i] if h == 0 else points[w, c, h - 1]
                a_prev = bars.prices[o - 1 + h, i]
                errors.append(abs(points[w, c, h] / f_prev - bars.prices[o + h, i] / a_prev))
        by_hand_steps.append(np.mean(errors))
    assert [s["return_mae"] for s in metrics.per_step] == pytest.approx(by_hand_steps)
    assert metrics.return_mae == pytest.approx(np.mean(by_hand_steps))
    assert last_step.return_mae == pytest.approx(by_hand_steps[-1])
    assert set(metrics.per_column) == {"close", "high"}
    assert metrics.value("return_mae") == pytest.approx(
        np.mean([metrics.per_column[c]["return_mae"] for c in columns])
    )


def test_one_step_close_scores_are_the_formulas_they_always_were() -> None:
    rng = np.random.default_rng(9)
    close = 50 * np.exp(np.cumsum(0.02 * rng.standard_normal(25)))
    targets = np.arange(5, 25)
    forecast = close[targets - 1] * (1 + 0.01 * rng.standard_normal(20))
    metrics = score_close(close, targets, forecast)
    last = close[targets - 1]
    assert metrics.price_mae == float(np.mean(np.abs(forecast - close[targets])))
    assert metrics.return_mae == float(np.mean(np.abs(forecast / last - close[targets] / last)))
    assert metrics.naive_return_mae == float(np.mean(np.abs(close[targets] / last - 1.0)))
