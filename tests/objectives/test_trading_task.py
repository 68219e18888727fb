"""``--task trading``: the forecasts the trading code makes, against fixtures made with the
upstream code (``scripts/make_trading_fixtures.py``, ``tests/fixtures/trading/README.md``).

* Toto on each column's percent-change series (the context ``r[1..o-1]``), its return samples
  distributed as upstream's forecaster's, for Close and High;
* Kronos on the wrapper's frame (``amount = volume * close``), greedy, equal to upstream's
  ``KronosPredictor.predict`` at ``pred_len`` 1 and along a 7-step path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import ks_2samp

from objectives.bars import Bars
from objectives.evaluator import load_backend
from objectives.kronos.stages import features
from objectives.tasks import LEVELS, TRADING, Task
from objectives.toto import TotoSettings, load, parse
from objectives.toto.evaluator import percent_changes

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TRADING_FIXTURES = FIXTURES / "trading"
KRONOS_CHECKPOINT = FIXTURES / "kronos" / "checkpoint"
TOTO_TINY = FIXTURES / "toto" / "tiny"
#: the fixture's column order (open, high, low, close, volume, amount) for our task's columns
KRONOS_INDEX = {"open": 0, "high": 1, "low": 2, "close": 3}


def fixture_bars(data: dict[str, np.ndarray]) -> Bars:
    stamps = data["timestamps"].astype("datetime64[s]").astype("datetime64[ns]")
    prices = np.stack([data[c] for c in ("open", "high", "low", "close")], axis=1)
    return Bars("BTCUSD", stamps, prices.astype(np.float64), data["volume"].astype(np.float64),
                None)  # fmt: skip


@pytest.fixture(scope="module")
def kronos_data() -> dict[str, np.ndarray]:
    with np.load(TRADING_FIXTURES / "kronos_paths.npz") as f:
        return {k: f[k] for k in f.files}


@pytest.fixture(scope="module")
def toto_data() -> dict[str, np.ndarray]:
    with np.load(TRADING_FIXTURES / "toto_returns.npz") as f:
        return {k: f[k] for k in f.files}


def greedy(max_context: float, clip: float) -> dict[str, object]:
    return {"temperature": 1.0, "top_p": 1.0, "top_k": 1, "sample_count": 1,
            "max_context": int(max_context), "clip": float(clip)}  # fmt: skip


def test_the_trading_frame_fills_amount_as_the_wrapper_does(kronos_data) -> None:
    bars = fixture_bars(kronos_data)
    trading = features(bars.prices, bars.volume, None, "close")
    upstream = features(bars.prices, bars.volume, None)
    np.testing.assert_array_equal(trading[:, 5], kronos_data["amount_wrapper"])
    np.testing.assert_array_equal(upstream[:, 5], kronos_data["amount_upstream"])


@pytest.mark.parametrize("horizon", [1, 7])
def test_greedy_kronos_paths_equal_the_upstream_predictor_given_the_wrappers_frame(
    kronos_data, horizon: int
) -> None:
    bars = fixture_bars(kronos_data)
    backend = load_backend("kronos", checkpoint=str(KRONOS_CHECKPOINT))
    expected = kronos_data[f"pred_p{horizon}"]  # (settings, origins, horizon, 6)
    columns = [KRONOS_INDEX[c] for c in TRADING.columns]
    for s, (max_context, clip) in enumerate(kronos_data["settings"]):
        evaluator = backend.evaluator(bars, TRADING, horizon)
        forecast = evaluator.forecast(kronos_data["origins"], greedy(max_context, clip), seed=0)
        assert forecast.points.shape == (len(kronos_data["origins"]), 4, horizon)
        want = np.transpose(expected[s][:, :, columns], (0, 2, 1))  # (origins, C, H)
        np.testing.assert_allclose(forecast.points, want, rtol=2e-5)
        # greedy: one path per window, every step of it a transformer pass after the first
        assert forecast.passes == len(kronos_data["origins"]) * horizon


def test_the_levels_task_keeps_upstreams_amount_and_differs_from_trading(kronos_data) -> None:
    bars = fixture_bars(kronos_data)
    backend = load_backend("kronos", checkpoint=str(KRONOS_CHECKPOINT))
    max_context, clip = kronos_data["settings"][0]
    config = greedy(max_context, clip)
    levels = backend.evaluator(bars, LEVELS, 1).forecast(kronos_data["origins"], config, 0)
    want = kronos_data["pred_p1_upstream_amount"][0][:, 0, 3]  # close, step 1
    np.testing.assert_allclose(levels.points[:, 0, 0], want, rtol=2e-5)
    trading = backend.evaluator(bars, Task("trading", ("close",)), 1).forecast(
        kronos_data["origins"], config, 0
    )
    assert not np.allclose(trading.points[:, 0, 0], levels.points[:, 0, 0], rtol=1e-7)


def test_a_kronos_path_reads_only_the_rows_before_its_origin(kronos_data) -> None:
    bars = fixture_bars(kronos_data)
    backend = load_backend("kronos", checkpoint=str(KRONOS_CHECKPOINT))
    config = {"temperature": 0.9, "top_p": 0.9, "top_k": 0, "sample_count": 6,
              "max_context": 64, "clip": 2.0}  # fmt: skip
    origin = 380
    prices = bars.prices.copy()
    prices[origin:] *= 1.7
    changed = Bars(bars.symbol, bars.timestamps, prices, bars.volume * 1.3, None)
    a = backend.evaluator(bars, TRADING, 7).forecast(np.array([origin]), config, seed=4)
    b = backend.evaluator(changed, TRADING, 7).forecast(np.array([origin]), config, seed=4)
    np.testing.assert_array_equal(a.points, b.points)
    later = backend.evaluator(changed, TRADING, 7).forecast(np.array([origin + 1]), config, 4)
    same = backend.evaluator(bars, TRADING, 7).forecast(np.array([origin + 1]), config, 4)
    assert not np.array_equal(later.points, same.points)


def test_percent_changes_are_the_trading_codes(toto_data) -> None:
    for c, column in enumerate(toto_data["columns"]):
        ours = percent_changes(toto_data[str(column).lower()]).astype(np.float32)
        np.testing.assert_array_equal(ours, toto_data["returns"][c])
    zero = percent_changes(np.array([0.0, 2.0, 3.0]))
    assert zero.tolist() == [1.0, 0.0, 0.5]  # 0 where the previous value is 0


def test_toto_reads_the_returns_before_its_target_from_r1(toto_data, monkeypatch) -> None:
    backend = load(str(TOTO_TINY))
    evaluator = backend.evaluator(fixture_bars(toto_data), Task("trading", ("close", "high")))
    seen: list[np.ndarray] = []
    original = evaluator._forward
    monkeypatch.setattr(
        evaluator, "_forward", lambda context, steps: seen.append(context.numpy()) or original(
            context, steps)
    )  # fmt: skip
    evaluator.forecast(toto_data["origins"][:2], {"num_samples": 128, "aggregate": "mean"}, 0)
    expected = [toto_data["returns"][c, 1:o] for c in range(2) for o in toto_data["origins"][:2]]
    assert len(seen) == len(expected)
    for got, want in zip(seen, expected, strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("column", [0, 1])  # Close, High
def test_toto_return_samples_follow_the_upstream_forecaster(toto_data, column: int) -> None:
    backend = load(str(TOTO_TINY))
    name = str(toto_data["columns"][column]).lower()
    evaluator = backend.evaluator(fixture_bars(toto_data), Task("trading", (name,)))
    n = int(toto_data["num_samples"])
    settings = TotoSettings(num_samples=n, aggregate=parse("mean"))
    rows = [int(o) for o in toto_data["origins"]]
    draws = evaluator._draws(rows, settings, seed=11, column=name)[:, 0].numpy()  # (W, n)
    levels = toto_data["quantile_levels"]
    for w in range(len(rows)):
        reference = toto_data["samples"][column, w].astype(np.float64)
        assert ks_2samp(draws[w], reference).pvalue > 1e-3, (name, rows[w])
        ours = np.quantile(draws[w], levels)
        # Monte-Carlo error of a sample quantile, sqrt(q (1 - q) / n) / density, the density
        # read off the reference's own quantiles; both sides are samples: sqrt(2); 5 of them
        density = 0.02 / (np.quantile(reference, levels + 0.01)
                          - np.quantile(reference, levels - 0.01))  # fmt: skip
        tolerance = 5 * np.sqrt(2) * np.sqrt(levels * (1 - levels) / n) / density
        assert np.all(np.abs(ours - toto_data["quantiles"][column, w]) < tolerance), (name, w)
    # the price is the last value times one plus the aggregated return
    forecast = evaluator.forecast(np.array(rows), settings, seed=11)
    last = fixture_bars(toto_data).prices[np.array(rows) - 1, 1 if name == "high" else 3]
    np.testing.assert_allclose(
        forecast.points[:, 0, 0], last * (1 + draws.mean(axis=1)), rtol=1e-12
    )


def test_trading_toto_refuses_a_context_cap_the_trading_code_never_applies(toto_data) -> None:
    from objectives.exceptions import DataError

    evaluator = load(str(TOTO_TINY)).evaluator(fixture_bars(toto_data), TRADING)
    with pytest.raises(DataError, match="whole history"):
        evaluator.forecast(np.array([200]), {"num_samples": 128, "aggregate": "mean",
                                             "max_context": 64}, 0)  # fmt: skip
    assert torch.get_num_threads() >= 1
