"""The winner's picture reads as prices: the y-axis follows them (the band clipped, with a
note), labelled axes, calendar gaps marked, and a title whose MAEs are of the drawn forecast."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from storage.record import Record
from studies import calendar
from studies.picture import drawn_mae, figure

#: a coin near 0.1: six business days around a Monday holiday (2013-01-21) and a weekend
DAYS = ["2013-01-16", "2013-01-17", "2013-01-18", "2013-01-22", "2013-01-23", "2013-01-24"]
ACTUAL = [0.100, 0.102, 0.101, 0.104, 0.103, 0.105]


def coin(band: tuple[float, float] = (-0.3, 0.5), validation_count: int = 3) -> Record:
    """A made-up record of a 0.1 coin whose band is ``band`` around every forecast."""
    forecast = [0.101, 0.100, 0.103, 0.102, 0.105, 0.104]
    return Record.from_json({
        "symbol": "DOGE", "model": "toto", "config": {"name": "toto_x"},
        "validation": {"price_mae": 0.5, "return_mae": 0.01, "latency_s": 0.01},
        "test": {"price_mae": 0.7, "return_mae": 0.02, "latency_s": 0.01,
                 "naive_return_mae": 0.015},
        "windows": {"val_window": 3, "test_window": 3, "forecast_horizon": 1},
        "metadata": {
            "study_name": "toto:DOGE:v3-t3-h1", "trial_number": 4, "seed": 7,
            "objective": "return_mae", "created_at": "2026-12-07T00:00:00+00:00",
            "forecasts": {
                "timestamps": [f"{d}T00:00:00Z" for d in DAYS], "actual": ACTUAL,
                "naive": [0.099, *ACTUAL[:-1]], "forecast": forecast,
                "band_quantiles": [0.1, 0.9], "band_low": [f + band[0] for f in forecast],
                "band_high": [f + band[1] for f in forecast],
                "validation_count": validation_count,
            },
        },
    })  # fmt: skip


@pytest.fixture
def drawn() -> Iterator[object]:
    """Draw a record's figure and close it afterwards."""
    from matplotlib import pyplot as plt

    made = []

    def draw(record: Record) -> object:
        made.append(figure(record))
        return made[-1].axes[0]

    yield draw
    for fig in made:
        plt.close(fig)


def _texts(axes: object) -> list[str]:
    return [t.get_text() for t in axes.texts]  # type: ignore[attr-defined]


def test_the_y_axis_follows_the_prices_and_a_band_leaving_it_is_noted(drawn) -> None:
    axes = drawn(coin(band=(-0.3, 0.5)))
    low, high = axes.get_ylim()
    assert 0.09 < low < 0.099 and 0.105 < high < 0.11  # the prices, not the band's -0.2..0.6
    note = [t for t in _texts(axes) if "band clipped to the axis" in t]
    assert len(note) == 1
    assert "leaves it at 6 of 6 targets" in note[0] and "(from -0.2 to 0.605)" in note[0]
    assert "lower edge <= 0 (impossible) at 6" in note[0]
    (below,) = [line for line in axes.get_lines() if line.get_marker() == "v"]
    assert list(below.get_ydata()) == [low] * 6 and below.get_color() == "red"


def test_a_band_inside_the_axis_gets_no_note(drawn) -> None:
    axes = drawn(coin(band=(-0.0003, 0.0003)))
    assert not [t for t in _texts(axes) if "band" in t]
    assert not [line for line in axes.get_lines() if line.get_marker() == "v"]
    assert axes.get_ylim()[0] > 0.09


def test_the_axes_are_labelled_with_their_units(drawn) -> None:
    axes = drawn(coin())
    assert axes.get_xlabel() == "bar date (UTC), 2013-01-16 to 2013-01-24"
    assert axes.get_ylabel() == "close, in DOGE's quote currency"


def test_a_holiday_is_a_gap_a_weekend_is_not_and_the_gap_is_drawn(drawn) -> None:
    stamps = np.array(DAYS, dtype="datetime64[s]")
    assert calendar.gaps(stamps).tolist() == [3]  # Fri 18 -> Tue 22 skips Monday 21, only
    assert calendar.rule(stamps).startswith("a weekday without a bar")
    crypto = np.arange("2013-01-16", "2013-01-24", dtype="datetime64[D]").astype("datetime64[s]")
    assert calendar.gaps(crypto).tolist() == []  # every day, weekends included: no gap
    missing = np.delete(crypto, [4, 5])  # two days missing (a weekend, for a coin)
    assert calendar.gaps(missing).tolist() == [4]
    assert calendar.rule(missing) == "a step over the median step, 1 day"
    hourly = np.array(["2013-01-16T10", "2013-01-16T11", "2013-01-16T14", "2013-01-16T15"],
                      dtype="datetime64[s]")  # fmt: skip
    assert calendar.gaps(hourly).tolist() == [2]

    axes = drawn(coin())
    marks = [line for line in axes.get_lines() if line.get_label().startswith("calendar gap")]
    assert len(marks) == 1
    assert marks[0].get_xdata()[0] == np.datetime64("2013-01-20T00:00:00")  # between 18 and 22


def test_the_title_gives_the_mae_of_the_forecast_drawn(drawn) -> None:
    record = coin(validation_count=3)
    (val, val_naive), (test, test_naive) = drawn_mae(record.metadata.forecasts)
    assert val == pytest.approx(np.mean([0.001, 0.002, 0.002]))
    assert test == pytest.approx(np.mean([0.002, 0.002, 0.001]))
    title = drawn(record).get_title()
    assert "trial 4: its close forecast on the study seed 7, as drawn" in title
    assert f"validation {val:.4g} (naive {val_naive:.4g}) | test {test:.4g}" in title
    assert "0.5" not in title.split("\n")[1]  # the record's confirmed price MAE is not drawn
    assert "return_mae (in % of the price): validation 1.000 (mean of 0 fresh seed" in title
    assert "test 2.000 (naive 1.500)" in title
