"""Metrics and the naive baseline."""

from __future__ import annotations

import numpy as np
import pytest

from objectives.metrics import score_close as score


def test_a_perfect_forecast_has_zero_error_and_full_skill() -> None:
    close = np.array([10.0, 11.0, 12.0, 10.0])
    metrics = score(close, np.array([2, 3]), close[[2, 3]])
    assert metrics.price_mae == 0 and metrics.return_mae == 0 and metrics.skill == 1
    assert metrics.naive_price_mae == pytest.approx(1.5)  # |11-12|, |12-10|
    assert metrics.naive_return_mae == pytest.approx((1 / 11 + 2 / 12) / 2)
    assert metrics.beats_naive("price_mae") and metrics.beats_naive("return_mae")


def test_returns_are_relative_to_the_last_context_close() -> None:
    close = np.array([100.0, 110.0])
    metrics = score(close, np.array([1]), np.array([105.0]))
    assert metrics.return_mae == pytest.approx(0.05)
    assert metrics.price_mae == pytest.approx(5.0)
    assert metrics.skill == pytest.approx(0.5)


def test_the_naive_forecast_has_zero_skill(sample_data) -> None:
    import pandas as pd

    from objectives.bars import load_bars
    from objectives.windows import WindowSpec, split

    bars = load_bars(sample_data, "AAPL")
    windows = split(len(bars), WindowSpec())
    naive = score(bars.close, windows.validation, bars.close[windows.validation - 1])
    assert naive.skill == 0
    closes = pd.read_csv(sample_data / "AAPL.csv")["close"].tolist()  # straight from the file
    targets = range(len(closes) - 40, len(closes) - 20)  # the 20 bars before the test window
    expected = sum(abs(closes[i] - closes[i - 1]) for i in targets) / 20
    assert naive.price_mae == pytest.approx(expected, rel=1e-12)
    expected_return = sum(abs(closes[i] / closes[i - 1] - 1) for i in targets) / 20
    assert naive.return_mae == pytest.approx(expected_return, rel=1e-9)
    assert naive.naive_return_mae == naive.return_mae and not naive.beats_naive("return_mae")
