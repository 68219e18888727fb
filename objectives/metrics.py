"""Forecast metrics as objects in one registry, scored against the naive (last value) forecast.

A :class:`Metric` maps an :class:`Outcome` (actual bars, the forecast's points and draws for
each origin, column and path step) to per-target values ``(W, C, H)``; its value over a window
is the mean over origins, per column and step, then over the path (its mean or last step) and
over the columns. The naive forecast repeats the last observed value at every step (a return
of 0). Adding a metric is one :func:`register` call and a test.

Returns are step-wise, as the trading code reads a path: step 1 relative to the last observed
value, step ``h`` relative to step ``h - 1`` (the forecast's own for the forecast, the actual's
for the actual). At one step, ``return_mae`` is ``|f / last - a / last|``, as it always was.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from objectives.bars import Bars
from objectives.forecasts import Draws, Forecast
from objectives.tasks import PRICE_COLUMNS

#: earlier (forecast, actual) pairs the trading code's rolling calibration fits on
CALIBRATION_PAIRS = 6


@dataclass(frozen=True, eq=False)
class Outcome:
    """A forecast beside what happened: everything a metric reads."""

    actual: np.ndarray  # (W, C, H) prices at rows origin + step
    last: np.ndarray  # (W, C) the value before each origin
    points: np.ndarray  # (W, C, H) forecast prices
    draws: tuple[Draws, ...]
    origins: np.ndarray  # (W,)

    def step_returns(self, prices: np.ndarray) -> np.ndarray:
        """``(W, C, H)`` step-wise returns of a path; step 1 is relative to ``last``."""
        base = np.concatenate([self.last[:, :, None], prices[:, :, :-1]], axis=2)
        returns: np.ndarray = prices / base - 1.0
        return returns

    def return_errors(self) -> np.ndarray:
        """``|f_h / f_{h-1} - a_h / a_{h-1}|`` with ``f_0 = a_0 = last``."""
        last = self.last[:, :, None]
        f_base = np.concatenate([last, self.points[:, :, :-1]], axis=2)
        a_base = np.concatenate([last, self.actual[:, :, :-1]], axis=2)
        errors: np.ndarray = np.abs(self.points / f_base - self.actual / a_base)
        return errors

    def naive(self) -> Outcome:
        """The naive forecast of the same targets: the last value at every step."""
        last = np.broadcast_to(self.last[:, :, None], self.points.shape).copy()
        point_mass = tuple(Draws(last[w][None], np.ones(1)) for w in range(len(self.origins)))
        return replace(self, points=last, draws=point_mass)


@dataclass(frozen=True)
class Metric:
    """One metric: its name, what it reads, which way is better, its per-target function."""

    name: str
    needs: str  # "points" or "draws"
    direction: Literal["minimize", "maximize"]
    per_target: Callable[[Outcome], np.ndarray]
    description: str

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` is strictly better than ``b``."""
        return a < b if self.direction == "minimize" else a > b


METRICS: dict[str, Metric] = {}


def register(metric: Metric) -> Metric:
    METRICS[metric.name] = metric
    return metric


def _price_errors(o: Outcome) -> np.ndarray:
    errors: np.ndarray = np.abs(o.points - o.actual)
    return errors


def _direction_hits(o: Outcome) -> np.ndarray:
    predicted = np.sign(o.step_returns(o.points))
    actual = np.sign(o.step_returns(o.actual))
    hits: np.ndarray = (predicted == actual).astype(np.float64)
    return hits


def calibrate(predicted: np.ndarray, actual: np.ndarray) -> tuple[float, float]:
    """The trading code's ``calibrate_signal``: least squares ``actual = slope * predicted +
    intercept`` (``np.polyfit``, degree 1) when more than one pair, else ``(1, 0)``.

    Where ``np.polyfit`` cannot fit (constant or non-finite predictions: it raises or returns
    NaN there, and the trading code would fail), no calibration: ``(1, 0)``."""
    if len(predicted) > 1 and np.ptp(predicted) > 0 and np.isfinite(predicted).all():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # RankWarning for nearly constant predictions
            try:
                slope, intercept = np.polyfit(predicted, actual, 1)
            except np.linalg.LinAlgError:
                return 1.0, 0.0
        if np.isfinite(slope) and np.isfinite(intercept):
            return float(slope), float(intercept)
    return 1.0, 0.0


def _calibrated_errors(o: Outcome) -> np.ndarray:
    """Walk-forward rolling calibration: each forecast's move is calibrated on the last
    :data:`CALIBRATION_PAIRS` earlier forecasts of the same run whose actual was known before
    its origin (origin' + step < origin), as the trading code fits on its recent pairs."""
    predicted, actual = o.step_returns(o.points), o.step_returns(o.actual)
    out = np.empty_like(predicted)
    W, C, H = predicted.shape
    for c in range(C):
        for h in range(H):
            for k in range(W):
                known = [j for j in range(k) if o.origins[j] + h < o.origins[k]]
                recent = known[-CALIBRATION_PAIRS:]
                slope, intercept = calibrate(predicted[recent, c, h], actual[recent, c, h])
                out[k, c, h] = abs(slope * predicted[k, c, h] + intercept - actual[k, c, h])
    return out


def crps_weighted(samples: np.ndarray, weights: np.ndarray, y: float) -> float:
    """CRPS of the weighted sample distribution at ``y``: ``E|X - y| - E|X - X'| / 2``."""
    order = np.argsort(samples, kind="stable")
    x, p = samples[order], weights[order] / weights.sum()
    cumulative = np.cumsum(p)
    spread = 2.0 * np.sum(p * x * (cumulative - p + cumulative - 1.0))
    return float(np.sum(p * np.abs(x - y)) - 0.5 * spread)


def _crps(o: Outcome) -> np.ndarray:
    """CRPS of each step's return distribution (the draws' step-wise returns)."""
    actual = o.step_returns(o.actual)
    W, C, H = actual.shape
    out = np.empty((W, C, H))
    for w, draws in enumerate(o.draws):
        base = np.concatenate(
            [np.broadcast_to(o.last[w][None, :, None], (len(draws.values), C, 1)),
             draws.values[:, :, :-1]], axis=2,
        )  # fmt: skip
        returns = draws.values / base - 1.0  # (S, C, H)
        for c in range(C):
            for h in range(H):
                out[w, c, h] = crps_weighted(returns[:, c, h], draws.weights, actual[w, c, h])
    return out


register(Metric("price_mae", "points", "minimize", _price_errors,
                "mean absolute error of the forecast price"))  # fmt: skip
register(Metric("return_mae", "points", "minimize", lambda o: o.return_errors(),
                "mean absolute error of the step-wise return (pct_return_mae)"))  # fmt: skip
register(Metric("direction_accuracy", "points", "maximize", _direction_hits,
                "share of targets whose predicted move has the actual move's sign"))  # fmt: skip
register(Metric("calibrated_return_mae", "points", "minimize", _calibrated_errors,
                "return MAE after the trading code's rolling least-squares calibration, "
                "fitted walk-forward on earlier forecasts of the same run"))  # fmt: skip
register(Metric("crps", "draws", "minimize", _crps,
                "continuous ranked probability score of the step-wise return draws"))  # fmt: skip

#: the metrics a study may optimise
METRIC_NAMES = tuple(METRICS)


def metric(name: str) -> Metric:
    return METRICS[name]


@dataclass(frozen=True)
class Metrics:
    """A scoring: every registered metric for the forecast and for naive, over the window, per
    column and per step, and the per-target values (for paired tests)."""

    values: dict[str, float]
    naive_values: dict[str, float]
    per_column: dict[str, dict[str, float]] = field(default_factory=dict)
    per_step: tuple[dict[str, float], ...] = ()
    per_target: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    #: the naive forecast's per-target values of the same targets
    naive_per_target: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def price_mae(self) -> float:
        return self.values["price_mae"]

    @property
    def return_mae(self) -> float:
        return self.values["return_mae"]

    @property
    def naive_price_mae(self) -> float:
        return self.naive_values["price_mae"]

    @property
    def naive_return_mae(self) -> float:
        return self.naive_values["return_mae"]

    @property
    def skill(self) -> float:
        """``1 - price_mae / naive_price_mae``: above 0 beats the naive forecast."""
        if self.naive_price_mae == 0:
            return 0.0
        return 1.0 - self.price_mae / self.naive_price_mae

    def value(self, name: str) -> float:
        return float(self.values[name])

    def naive(self, name: str) -> float:
        """The naive forecast's value of metric ``name``."""
        return float(self.naive_values[name])

    def beats_naive(self, name: str = "price_mae") -> bool:
        """Strictly better than the naive forecast on ``name``."""
        return METRICS[name].better(self.value(name), self.naive(name))

    def as_dict(self) -> dict[str, float]:
        """Flat: each metric, ``naive_<metric>``, and the price skill."""
        flat = dict(self.values)
        flat.update({f"naive_{k}": v for k, v in self.naive_values.items()})
        flat["skill"] = self.skill
        return flat


def _window_value(per_target: np.ndarray, path_score: str) -> tuple[float, np.ndarray]:
    """The window value of ``(W, C, H)`` values, and the per-(column, step) means ``(C, H)``."""
    W, C, H = per_target.shape
    means = np.empty((C, H))
    for c in range(C):
        for h in range(H):
            means[c, h] = np.mean(np.ascontiguousarray(per_target[:, c, h]))
    per_column = means.mean(axis=1) if path_score == "mean" else means[:, -1]
    return float(np.mean(per_column)), means


def outcome(bars: Bars, forecast: Forecast) -> Outcome:
    """The forecast beside the bars it forecast (rows ``origin + step``)."""
    origins = np.asarray(forecast.origins, dtype=np.int64)
    columns = [PRICE_COLUMNS.index(c) for c in forecast.columns]
    steps = np.arange(forecast.horizon)
    rows = origins[:, None] + steps[None, :]  # (W, H)
    prices = bars.prices[:, columns]  # (N, C)
    actual = np.transpose(prices[rows], (0, 2, 1))  # (W, C, H)
    last = prices[origins - 1]  # (W, C)
    return Outcome(actual, last, np.asarray(forecast.points, np.float64), forecast.draws, origins)


def score(
    bars: Bars, forecast: Forecast, path_score: str = "mean", names: tuple[str, ...] | None = None
) -> Metrics:
    """Score ``forecast`` against ``bars`` with every registered metric (or ``names``)."""
    return score_outcome(outcome(bars, forecast), forecast.columns, path_score, names)


def score_close(close: np.ndarray, targets: np.ndarray, forecast: np.ndarray) -> Metrics:
    """Score one-step point forecasts of ``close[targets]`` (the draws: the points alone)."""
    targets = np.asarray(targets, dtype=np.int64)
    points = np.asarray(forecast, dtype=np.float64)[:, None, None]
    draws = tuple(Draws(p[None], np.ones(1)) for p in points)
    actual = Outcome(close[targets][:, None, None], close[targets - 1][:, None], points, draws,
                     targets)  # fmt: skip
    return score_outcome(actual, ("close",))


def score_outcome(
    actual: Outcome,
    columns: tuple[str, ...],
    path_score: str = "mean",
    names: tuple[str, ...] | None = None,
) -> Metrics:
    """Every registered metric (or ``names``) of ``actual`` and of naive on the same targets."""
    naive = actual.naive()
    horizon = actual.points.shape[2]
    values, naive_values, per_target, naive_per_target = {}, {}, {}, {}
    per_column: dict[str, dict[str, float]] = {c: {} for c in columns}
    per_step: list[dict[str, float]] = [{} for _ in range(horizon)]
    for name in names or METRIC_NAMES:
        m = METRICS[name]
        target_values = m.per_target(actual)
        values[name], means = _window_value(target_values, path_score)
        naive_target_values = m.per_target(naive)
        naive_values[name], _ = _window_value(naive_target_values, path_score)
        per_target[name] = target_values
        naive_per_target[name] = naive_target_values
        for c, column in enumerate(columns):
            row = means[c]
            per_column[column][name] = float(row.mean() if path_score == "mean" else row[-1])
        for h in range(horizon):
            per_step[h][name] = float(np.mean(means[:, h]))
    return Metrics(values, naive_values, per_column, tuple(per_step), per_target, naive_per_target)
