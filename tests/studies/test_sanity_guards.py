"""Impossible forecasts (a price at or below 0) are flagged everywhere and never clipped: the
trial's attrs, the record's ``metadata.warnings``, ``status``, the picture, ``launch``,
``export`` and ``forecast``. The forecast series here goes negative: a coin at about 0.12 and a
fake model whose forecasts sit 0.11 below what it would say (``FAKE_PRICE_SHIFT``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest

from objectives.forecasts import Draws, Forecast
from objectives.sanity import BAND_ATTR, POINTS_ATTR, check, warning_lines
from storage.record import Record
from tests.conftest import run_cli

NAME = "fake:COIN:v20-t20-h1"
IMPOSSIBLE = "made impossible forecasts"


def coin(folder: Path, rows: int = 220) -> Path:
    """``COIN.csv``: daily bars of a coin trading at about 0.12."""
    rng = np.random.default_rng(5)
    close = 0.12 * np.exp(np.cumsum(rng.normal(0, 0.03, rows)))
    frame = pd.DataFrame({
        "timestamp": pd.date_range("2024-01-01", periods=rows, freq="D"),
        "open": close * 1.001, "high": close * 1.02, "low": close * 0.98, "close": close,
        "volume": 1e6,
    })  # fmt: skip
    folder.mkdir(exist_ok=True)
    frame.to_csv(folder / "COIN.csv", index=False)
    return folder


def test_counts_points_band_and_path_steps_and_writes_one_line_each() -> None:
    points = np.array([[[1.0, -0.5]], [[2.0, 3.0]]])  # (origins 2, column 1, steps 2)
    draws = (
        Draws(np.array([[[1.0, -1.0]], [[-1.0, 1.0]], [[1.0, 1.0]]]), np.array([1.0, 1.0, 8.0])),
        Draws(np.ones((2, 1, 2)), np.ones(2)),
    )  # origin 0: a tenth of the draws <= 0 at step 1 (weight 1 of 10), one at step 2
    found = check(Forecast(np.array([30, 31]), ("close",), points, draws))
    assert (found.points, found.band, found.total) == (1, 2, 4)
    assert found.lowest == -0.5 and found.at == (0, "close", 2)
    assert found.attrs() == {POINTS_ATTR: 1, BAND_ATTR: 2}
    stamps = ["2024-05-01T00:00:00Z", "2024-05-02T00:00:00Z"]
    lines = warning_lines([("test", found, stamps)], band_low=[0.5, -0.2])
    assert len(lines) == 2
    assert lines[0].startswith(
        "1 of 4 price forecasts at or below 0 (test 1; lowest -0.5 (price units): test close"
    )
    assert "close step 2 for 2024-05-01" in lines[0] and "not clipped" in lines[0]
    assert "10% sample quantile at or below 0 at 2 of 4" in lines[1]
    assert "band edge as low as -0.2 (price units)" in lines[1]
    fine = check(Forecast(np.array([30]), ("close",), np.ones((1, 1, 1)), (draws[1],)))
    assert not fine.any and fine.attrs() == {}
    assert warning_lines([("validation", fine, stamps)], band_low=[0.1]) == []


def test_a_negative_forecast_series_is_flagged_everywhere_and_never_clipped(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = coin(workdir / "data")
    monkeypatch.setenv("FAKE_PRICE_SHIFT", "0.11")
    common = ["--model", "fake", "--data-dir", data, "--task", "levels"]
    cheap = ["--confirm-candidates", 2, "--confirm-draws", 2, "--no-default-comparison"]
    assert run_cli("launch", *common, *cheap, "--symbols", "COIN", "--n-trials", 3,
                   "--no-progress") == 0  # fmt: skip
    err = capsys.readouterr().err
    assert err.count(IMPOSSIBLE) == 1, err

    # the trials: counted, not clipped (trial 0, the known-good setting, is the last close
    # minus the shift: every forecast is below 0.11 below the price)
    study = optuna.load_study(study_name=NAME, storage="sqlite:///studies.db")
    flagged = [t for t in study.trials if t.user_attrs.get(POINTS_ATTR)]
    assert flagged and study.trials[0] in flagged
    first = study.trials[0]
    assert min(first.user_attrs["val_forecasts"]) < 0  # the forecast as computed
    assert first.user_attrs[POINTS_ATTR] == sum(x <= 0 for x in first.user_attrs["val_forecasts"])

    # the record: its warnings, and the forecasts it keeps as they were
    record = Record.from_json((workdir / "store/fake/COIN.json").read_bytes())
    warnings = record.metadata.warnings
    assert warnings is not None and any("price forecasts at or below 0" in w for w in warnings)
    assert record.metadata.forecasts is not None and min(record.metadata.forecasts.forecast) < 0
    assert (workdir / "store/fake/COIN.png").stat().st_size > 0

    # status: the count of trials, the winner's warning once; --json has both
    assert run_cli("status") == 0
    out, err = capsys.readouterr()
    header = next(line for line in out.splitlines() if line.startswith("study"))
    row = next(line for line in out.splitlines() if line.startswith(NAME))
    cells = dict(zip(header.split(), row.split(), strict=True))
    assert cells["<=0"] == str(len(flagged))
    assert err.count(IMPOSSIBLE) == 1
    assert run_cli("status", "--json") == 0
    [entry] = json.loads(capsys.readouterr().out)
    assert entry["nonpositive_trials"] == len(flagged)
    assert sum(IMPOSSIBLE in w for w in entry["warnings"]) == 1

    # export (current: nothing rewritten, still said) and forecast --from-store say it once
    assert run_cli("export", *common, *cheap, "--symbols", "COIN") == 0
    assert capsys.readouterr().err.count(IMPOSSIBLE) == 1
    assert run_cli("forecast", *common, "--symbol", "COIN", "--from-store", "--last", 3) == 0
    out, err = capsys.readouterr()
    assert err.count(IMPOSSIBLE) == 1
    assert "forecasts are at or below 0" in err and "not clipped" in err


def test_the_picture_marks_impossible_points_where_they_are() -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    from storage.record import Forecasts
    from studies.picture import _mark_nonpositive

    data = Forecasts(
        timestamps=("a", "b", "c"), actual=(1.0, 1.0, 1.0), naive=(1.0, 1.0, 1.0),
        forecast=(0.5, -0.2, 0.3), band_quantiles=(0.1, 0.9), band_low=(0.1, -0.4, -0.1),
        band_high=(0.9, 0.2, 0.6), validation_count=2,
    )  # fmt: skip
    figure, axes = plt.subplots()
    try:
        _mark_nonpositive(axes, np.arange(3), data)
        marks = [line for line in axes.get_lines() if line.get_marker() == "x"]
        assert [list(line.get_ydata()) for line in marks] == [[-0.2], [-0.4, -0.1]]
        assert all(line.get_color() == "red" for line in marks)
        assert [line.get_label() for line in marks][0].startswith("at or below 0")
    finally:
        plt.close(figure)
