"""Forecast metrics for one set of one-step targets, with the naive (last close) baseline."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

#: the metrics a study may optimise (validation value of one of these)
METRIC_NAMES = ("price_mae", "return_mae")


@dataclass(frozen=True)
class Metrics:
    price_mae: float
    return_mae: float
    naive_price_mae: float
    naive_return_mae: float

    @property
    def skill(self) -> float:
        """``1 - price_mae / naive_price_mae``: above 0 beats the naive forecast."""
        if self.naive_price_mae == 0:
            return 0.0
        return 1.0 - self.price_mae / self.naive_price_mae

    def naive(self, metric: str) -> float:
        """The naive forecast's value of ``metric`` (``price_mae`` or ``return_mae``)."""
        return float(getattr(self, f"naive_{metric}"))

    def beats_naive(self, metric: str = "price_mae") -> bool:
        """Strictly better than the last close on ``metric``."""
        return float(getattr(self, metric)) < self.naive(metric)

    def as_dict(self) -> dict[str, float]:
        return {**asdict(self), "skill": self.skill}


def score(close: np.ndarray, targets: np.ndarray, forecast: np.ndarray) -> Metrics:
    """Score close forecasts for ``targets`` against actual closes of the series ``close``.

    Returns are relative to the last context close (row ``target - 1``); the naive forecast is
    that close, so its return is 0.
    """
    targets = np.asarray(targets, dtype=np.int64)
    forecast = np.asarray(forecast, dtype=np.float64)
    actual = close[targets]
    last = close[targets - 1]
    return Metrics(
        price_mae=float(np.mean(np.abs(forecast - actual))),
        return_mae=float(np.mean(np.abs(forecast / last - actual / last))),
        naive_price_mae=float(np.mean(np.abs(last - actual))),
        naive_return_mae=float(np.mean(np.abs(actual / last - 1.0))),
    )
