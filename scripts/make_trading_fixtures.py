# ruff: noqa: E501, E741  (the README template is a markdown table; O is the origin count)
"""Make the "trading" forecast-task parity fixtures in ``tests/fixtures/trading/``.

The reference outputs come from the upstream implementations (``kronos-model-arch==0.1.0``,
``toto-ts==0.2.0``), called the way the trading code (lee101/stock-prediction at commit
3d98a753) calls them. Run with the reference virtualenv, never the project's::

    bash ../shared/tools/reference-venv.sh /work/refvenv     # once
    /work/refvenv/bin/python scripts/make_trading_fixtures.py [--data ../shared/data/BTCUSD.csv]

It loads the committed random tiny checkpoints (``tests/fixtures/kronos/checkpoint/`` and
``tests/fixtures/toto/tiny/``; it writes no new checkpoint and imports nothing of ours), takes
the last ``ROWS`` rows of the CSV, and writes (each file embeds the rows it used):

* ``kronos_paths.npz``: greedy (``top_k=1``) ``KronosPredictor.predict`` paths for pred_len 1
  and 7, on frames built as ``src/models/kronos_wrapper.py`` builds them (lookback =
  max_context rows, lower-case columns, ``amount = volume * close``, float32, future index
  from the median timestamp step), plus the pred_len 1 path with upstream's own amount fill
  (``volume * mean(OHLC)``);
* ``toto_returns.npz``: ``TotoForecaster.forecast`` samples (and their quantiles, mean, std)
  of the next percent change of Close and of High, with the whole untruncated history of
  percent changes as context, as ``backtest_test3_inline.py`` (``pre_process_data``, the
  ``price["y"]`` loop, ``_compute_toto_forecast``) and ``src/models/toto_wrapper.py``
  (``TotoPipeline.predict``) build it;
* ``README.md``: every array, its shape, meaning and the settings.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

warnings.simplefilter("ignore")

from model import Kronos, KronosPredictor, KronosTokenizer  # noqa: E402  (reference package)
from toto.data.util.dataset import MaskedTimeseries  # noqa: E402
from toto.inference.forecaster import TotoForecaster  # noqa: E402
from toto.model.toto import Toto  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "fixtures" / "trading"
KRONOS_CKPT = ROOT / "tests" / "fixtures" / "kronos" / "checkpoint"
TOTO_CKPT = ROOT / "tests" / "fixtures" / "toto" / "tiny"

ROWS = 400  # the last ROWS rows of the CSV
COLS = ["open", "high", "low", "close", "volume"]
FEATURES = ["open", "high", "low", "close", "volume", "amount"]
PRICE_COLS = ["open", "high", "low", "close"]

# Kronos: (max_context, clip) settings; origins o (frame = rows [o - max_context, o))
KRONOS_SETTINGS = [(64, 1.85), (120, 3.0)]
KRONOS_ORIGINS = np.array([350, 365, 380, 390, 392, 393])  # o + 7 <= ROWS: actuals exist
KRONOS_PRED_LENS = (1, 7)
KRONOS_SAMPLING = {"T": 1.0, "top_k": 1, "top_p": 1.0, "sample_count": 1}
KRONOS_SEED = 11

# Toto: target rows o; context = r[1 .. o-1] (length o - 1), whole history, untruncated
TOTO_COLUMNS = ["Close", "High"]
TOTO_ORIGINS = np.array(
    [11, 65, 101, 129, 200, 301, 399]
)  # contexts 10, 64, 100, 128, 199, 300, 398
TOTO_NUM_SAMPLES = 16384
TOTO_SAMPLES_PER_BATCH = 1024
TOTO_INTERVAL = 60 * 15  # TotoPipeline.predict's default time_interval_seconds
TOTO_SEED = 5
QUANTILE_LEVELS = np.array([0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95])


# ----------------------------------------------------------------------------- Kronos
def wrapper_feature_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """``KronosForecastingWrapper._prepare_feature_frame`` for a frame with no amount column."""
    working = rows.rename(columns=lambda c: str(c).lower()).copy()
    for column in PRICE_COLS:
        working[column] = pd.to_numeric(working[column], errors="coerce")
    working[PRICE_COLS] = working[PRICE_COLS].ffill().bfill()
    working["volume"] = pd.to_numeric(working["volume"], errors="coerce").fillna(0.0)
    working["amount"] = working["volume"] * working["close"]  # the wrapper's fill
    frame = working[FEATURES].astype(np.float32)
    return frame.replace([np.inf, -np.inf], np.nan).ffill().bfill()


def wrapper_future_index(timestamps: pd.DatetimeIndex, pred_len: int) -> pd.DatetimeIndex:
    """``KronosForecastingWrapper._build_future_index``."""
    deltas = timestamps.to_series().diff().dropna()
    step = deltas.median() if not deltas.empty else None
    if step is None or pd.isna(step) or step <= pd.Timedelta(0):
        step = pd.Timedelta(days=1)
    return pd.date_range(start=timestamps[-1] + step, periods=pred_len, freq=step)


def kronos_fixture(raw: pd.DataFrame, base: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    tokenizer = KronosTokenizer.from_pretrained(str(KRONOS_CKPT / "tokenizer"), strict=True)
    model = Kronos.from_pretrained(str(KRONOS_CKPT / "model"), strict=True)
    tokenizer.eval()
    model.eval()
    # timestamps as the wrapper makes them: to_datetime(utc=True), then tz-naive UTC
    stamps = pd.DatetimeIndex(pd.to_datetime(raw["timestamp"], utc=True)).tz_convert(None)
    S, O = len(KRONOS_SETTINGS), len(KRONOS_ORIGINS)
    paths = {p: np.zeros((S, O, p, 6), np.float32) for p in KRONOS_PRED_LENS}
    upstream_fill = np.zeros((S, O, 1, 6), np.float32)
    y_stamps = np.zeros((S, O, max(KRONOS_PRED_LENS)), np.int64)
    x_mean = np.zeros((S, O, 6), np.float32)
    x_std = np.zeros((S, O, 6), np.float32)
    for s, (mc, clip) in enumerate(KRONOS_SETTINGS):
        predictor = KronosPredictor(model, tokenizer, device="cpu", max_context=mc, clip=clip)
        for j, o in enumerate(KRONOS_ORIGINS):
            rows = raw.iloc[o - mc : o]  # the wrapper's lookback=max_context cut
            frame = wrapper_feature_frame(rows[COLS])
            x_ts = pd.Series(stamps[o - mc : o])
            values = frame.to_numpy()  # what predict() normalises: these rows only
            x_mean[s, j], x_std[s, j] = values.mean(axis=0), values.std(axis=0)
            for p in KRONOS_PRED_LENS:
                y_ts = pd.Series(wrapper_future_index(pd.DatetimeIndex(x_ts), p))
                results = []
                for seed in (KRONOS_SEED, KRONOS_SEED + 1):  # greedy: the seed must not matter
                    torch.manual_seed(seed)
                    out = predictor.predict(
                        frame, x_timestamp=x_ts, y_timestamp=y_ts, pred_len=p,
                        verbose=False, **KRONOS_SAMPLING,
                    )  # fmt: skip
                    assert list(out.columns) == FEATURES
                    results.append(out.to_numpy())
                assert np.array_equal(results[0], results[1]), "top_k=1 is not deterministic"
                paths[p][s, j] = results[0]
                if p == max(KRONOS_PRED_LENS):
                    y_stamps[s, j] = (y_ts.to_numpy().astype("datetime64[s]")).astype(np.int64)
            # upstream's own fill: the float64 OHLCV rows with no amount column
            torch.manual_seed(KRONOS_SEED)
            y_ts = pd.Series(wrapper_future_index(pd.DatetimeIndex(x_ts), 1))
            out = predictor.predict(
                rows[COLS].reset_index(drop=True), x_timestamp=x_ts, y_timestamp=y_ts,
                pred_len=1, verbose=False, **KRONOS_SAMPLING,
            )  # fmt: skip
            upstream_fill[s, j] = out[FEATURES].to_numpy()
    ohlc_mean = raw[PRICE_COLS].mean(axis=1)
    return {
        **base,
        "amount_wrapper": (raw["volume"] * raw["close"]).to_numpy().astype(np.float32),
        "amount_upstream": (raw["volume"] * ohlc_mean).to_numpy().astype(np.float32),
        "origins": KRONOS_ORIGINS.astype(np.int64),
        "settings": np.array(KRONOS_SETTINGS, dtype=np.float64),
        "pred_lens": np.array(KRONOS_PRED_LENS, dtype=np.int64),
        "sampling": np.array(
            [KRONOS_SAMPLING[k] for k in ("T", "top_k", "top_p", "sample_count")], np.float64
        ),
        "x_mean": x_mean,
        "x_std": x_std,
        "y_timestamps": y_stamps,
        "pred_p1": paths[1],
        "pred_p7": paths[7],
        "pred_p1_upstream_amount": upstream_fill,
    }


# ----------------------------------------------------------------------------- Toto
def pre_process_data(series: np.ndarray) -> np.ndarray:
    """``backtest_test3_inline.pre_process_data`` on one column (pct[0] is 1.0 there)."""
    series = np.asarray(series, dtype=float)
    pct = np.empty_like(series)
    pct[0] = 1.0
    denom = series[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        pct[1:] = np.where(denom != 0.0, (series[1:] - denom) / denom, 0.0)
    pct[1:] = np.nan_to_num(pct[1:], nan=0.0, posinf=0.0, neginf=0.0)
    return pct


def toto_samples(forecaster: TotoForecaster, context: torch.Tensor) -> np.ndarray:
    """``TotoPipeline.predict`` on a 1-D float32 context: (1, L) = unbatched, one variate."""
    series = context[None]  # context.unsqueeze(0)
    inputs = MaskedTimeseries(
        series=series,
        padding_mask=torch.ones_like(series, dtype=torch.bool),
        id_mask=torch.zeros_like(series, dtype=torch.int),
        timestamp_seconds=torch.zeros(1, series.shape[-1], dtype=torch.float32),
        time_interval_seconds=torch.full((1,), TOTO_INTERVAL, dtype=torch.float32),
    )
    with torch.inference_mode():
        forecast = forecaster.forecast(
            inputs, prediction_length=1, num_samples=TOTO_NUM_SAMPLES,
            samples_per_batch=TOTO_SAMPLES_PER_BATCH,
        )  # fmt: skip
    return forecast.samples[0, 0, 0].numpy()  # (num_samples,)


def toto_fixture(raw: pd.DataFrame, base: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    model = Toto.load_from_checkpoint(str(TOTO_CKPT), map_location="cpu").eval()
    forecaster = TotoForecaster(model.model)
    C, O = len(TOTO_COLUMNS), len(TOTO_ORIGINS)
    returns = np.zeros((C, len(raw)), np.float32)
    samples = np.zeros((C, O, TOTO_NUM_SAMPLES), np.float32)
    for c, column in enumerate(TOTO_COLUMNS):
        pct = pre_process_data(raw[column.lower()].to_numpy())
        # price["y"] = pct shifted by -1, last row dropped; the context for target row o is
        # price[:-pred_idx]["y"] = pct[1 : o], cast to float32 by torch.tensor
        returns[c] = pct.astype(np.float32)
        for j, o in enumerate(TOTO_ORIGINS):
            context = torch.tensor(pct[1:o], dtype=torch.float32)
            torch.manual_seed(TOTO_SEED + 100 * c + j)
            samples[c, j] = toto_samples(forecaster, context)
    s64 = samples.astype(np.float64)
    return {
        **base,
        "columns": np.array(TOTO_COLUMNS),
        "returns": returns,
        "origins": TOTO_ORIGINS.astype(np.int64),
        "context_lengths": (TOTO_ORIGINS - 1).astype(np.int64),
        "quantile_levels": QUANTILE_LEVELS,
        "quantiles": np.moveaxis(np.quantile(s64, QUANTILE_LEVELS, axis=-1), 0, -1),
        "mean": s64.mean(axis=-1),
        "std": s64.std(axis=-1, ddof=1),
        "samples": samples,
        "num_samples": np.array(TOTO_NUM_SAMPLES, np.int64),
        "samples_per_batch": np.array(TOTO_SAMPLES_PER_BATCH, np.int64),
        "time_interval_seconds": np.array(TOTO_INTERVAL, np.int64),
        "patch_size": np.array(model.model.patch_embed.patch_size, np.int64),
    }


# ----------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "BTCUSD.csv"))
    args = parser.parse_args()
    full = pd.read_csv(args.data)
    first = len(full) - ROWS
    raw = full.iloc[first:].reset_index(drop=True)
    stamps = pd.to_datetime(raw["timestamp"], utc=True).dt.tz_convert(None)
    base = {
        "timestamps": stamps.to_numpy().astype("datetime64[s]").astype(np.int64),
        **{c: raw[c].to_numpy(dtype=np.float64) for c in COLS},
        "csv_rows": np.arange(first, len(full), dtype=np.int64),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(1, min(8, torch.get_num_threads())))

    kronos = kronos_fixture(raw, base)
    # numpy's stubs match **kwds against allow_pickle: bool as well as the arrays
    np.savez_compressed(OUT / "kronos_paths.npz", **kronos)  # type: ignore[arg-type]
    toto = toto_fixture(raw, base)
    np.savez_compressed(OUT / "toto_returns.npz", **toto)  # type: ignore[arg-type]

    meta = {
        "data": Path(args.data).name, "csv_rows": [first, len(full) - 1],
        "torch": torch.__version__, "numpy": np.__version__, "pandas": pd.__version__,
    }  # fmt: skip
    (OUT / "README.md").write_text(README.format(meta=json.dumps(meta)))
    for name, arrays in (("kronos_paths.npz", kronos), ("toto_returns.npz", toto)):
        print(name, {k: tuple(np.shape(v)) for k, v in arrays.items()})


README = """\
# Trading-task parity fixtures

Written by `scripts/make_trading_fixtures.py` (run with the reference virtualenv:
`/work/refvenv/bin/python scripts/make_trading_fixtures.py`) from the upstream reference
implementations `kronos-model-arch==0.1.0` and `toto-ts==0.2.0`, called as the trading code
(lee101/stock-prediction, commit 3d98a753) calls them. Do not edit by hand. Both files load with
plain `np.load` (no pickle). Build info: {meta}

Checkpoints: the committed random tiny ones, `tests/fixtures/kronos/checkpoint/{{model,tokenizer}}`
and `tests/fixtures/toto/tiny` (the script writes none). Everything ran on CPU in float32.

## Input rows (in both files)

The last 400 rows of `BTCUSD.csv` (daily bars, 2019-03-26 .. 2020-04-28, no gaps, no zeros, no
NaNs). The CSV has `timestamp,open,high,low,close,volume`: **there is no amount column**.

| name | shape | dtype | meaning |
| --- | --- | --- | --- |
| `timestamps` | (400,) | int64 | seconds since 1970-01-01 UTC (`np.datetime64(t, "s")`) |
| `open`, `high`, `low`, `close`, `volume` | (400,) | float64 | the CSV's values |
| `csv_rows` | (400,) | int64 | row numbers in the CSV (0 = first data row): 1651 .. 2050 |

Row indices below (origins) index these 400 rows.

## `kronos_paths.npz`: greedy Kronos paths as `src/models/kronos_wrapper.py` asks for them

For setting `s` = (max_context, clip) and origin `o`: the frame is rows `[o - max_context, o)`
(the wrapper's `lookback = max_context` cut, `lookback=int(kronos_params["max_context"])`),
columns `open, high, low, close, volume, amount` with **amount = volume * close** (the
wrapper's fill, computed in float64, then the whole frame `.astype(np.float32)` as
`_prepare_feature_frame` does). `x_timestamp` = those rows' timestamps (tz-naive UTC),
`y_timestamp` = `_build_future_index`: `pred_len` stamps from last + median step (1 day here),
`freq=step`. Then upstream
`KronosPredictor(model, tokenizer, device="cpu", max_context=max_context, clip=clip).predict(
frame, x_timestamp, y_timestamp, pred_len=P, T=1.0, top_k=1, top_p=1.0, sample_count=1,
verbose=False)`. Upstream z-scores over the frame's rows only (`np.mean`/`np.std`, ddof 0, of
the float32 frame, `(x - mean) / (std + 1e-5)`, clipped to +-clip) and de-normalises with the
same stats. Each prediction was made twice with different torch seeds and was identical.

| name | shape | dtype | meaning |
| --- | --- | --- | --- |
| `settings` | (2, 2) | float64 | `[max_context, clip]` = `[[64, 1.85], [120, 3.0]]` |
| `origins` | (6,) | int64 | `[350, 365, 380, 390, 392, 393]` (o + 7 <= 400: the actual next 7 rows exist) |
| `pred_lens` | (2,) | int64 | `[1, 7]` |
| `sampling` | (4,) | float64 | `[T, top_k, top_p, sample_count]` = `[1.0, 1, 1.0, 1]` |
| `amount_wrapper` | (400,) | float32 | `float32(volume * close)`, the wrapper's amount per row |
| `amount_upstream` | (400,) | float32 | `float32(volume * mean(open, high, low, close))`, upstream's fill |
| `x_mean`, `x_std` | (2, 6, 6) | float32 | the normalisation stats of each (setting, origin) frame (wrapper fill), feature order below |
| `y_timestamps` | (2, 6, 7) | int64 | the P = 7 future index in seconds UTC (P = 1 uses its first entry) |
| `pred_p1` | (2, 6, 1, 6) | float32 | `predict(...)` values for P = 1, wrapper fill |
| `pred_p7` | (2, 6, 7, 6) | float32 | `predict(...)` values for P = 7, wrapper fill |
| `pred_p1_upstream_amount` | (2, 6, 1, 6) | float32 | P = 1 again, but the frame passed is the float64 OHLCV rows with no amount column, so upstream fills amount = volume * mean(OHLC) (then casts to float32) |

Feature (last-axis) order: `open, high, low, close, volume, amount`.
Axes: (setting, origin, step, feature). The wrapper turns a path into step returns with
`_compute_step_returns` against the last frame row (`frame.iloc[-1]`, i.e. row o - 1).

## `toto_returns.npz`: Toto next-return samples as `backtest_test3_inline.py` asks for them

For column `c` in (Close, High): `pre_process_data` makes `r[t] = (x[t] - x[t-1]) / x[t-1]`
(0 where `x[t-1] == 0`; `r[0]` is set to **1.0** there, but never reaches a context). The
`price["y"]` loop sets `y[i] = r[i + 1]` and drops the last row; `_compute_toto_forecast`
forecasts target row `o` from `price[:-pred_idx]["y"]`, i.e. the context `r[1 .. o-1]`
(length o - 1, the whole history, untruncated), `torch.tensor(..., dtype=torch.float32)`.
`TotoPipeline.predict` unsqueezes it to `(1, L)` (unbatched, one variate) and builds
`MaskedTimeseries(series, padding_mask=ones (bool), id_mask=zeros (int),
timestamp_seconds=zeros (float32, (1, L)), time_interval_seconds=full((1,), 900) (float32))`;
upstream `TotoForecaster(model.model).forecast(inputs, prediction_length=1,
num_samples=16384, samples_per_batch=1024)` left-pads series and padding mask with zeros to a
multiple of the patch size (64). Seeds: `torch.manual_seed(5 + 100 * c + j)` before each
(column c, origin j). Quantiles use `np.quantile` (linear) in float64.

| name | shape | dtype | meaning |
| --- | --- | --- | --- |
| `columns` | (2,) | str | `["Close", "High"]` |
| `returns` | (2, 400) | float32 | `r` per column as above, float32 (`returns[c, 0] == 1.0`) |
| `origins` | (7,) | int64 | target rows `[11, 65, 101, 129, 200, 301, 399]` |
| `context_lengths` | (7,) | int64 | `origins - 1` = `[10, 64, 100, 128, 199, 300, 398]`; context = `returns[c, 1:o]` |
| `quantile_levels` | (7,) | float64 | `[0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95]` |
| `quantiles` | (2, 7, 7) | float64 | (column, origin, level) quantiles of the samples |
| `mean` | (2, 7) | float64 | sample mean |
| `std` | (2, 7) | float64 | sample std, ddof = 1 (as `Forecast.std`) |
| `samples` | (2, 7, 16384) | float32 | the raw forecaster samples of the next return |
| `num_samples` | () | int64 | 16384 |
| `samples_per_batch` | () | int64 | 1024 |
| `time_interval_seconds` | () | int64 | 900 (`TotoPipeline.predict`'s default; the backbone ignores it) |
| `patch_size` | () | int64 | 64 |

## Notes for tests

* `pred_p7[:, :, 0]` is **not** `pred_p1[:, :, 0]`: upstream decodes the whole path at the end
  with the tokenizer over the last `max_context` tokens (`context_start = total - max_context`),
  and the tokenizer decoder is causal with rotary positions, so the window start (1 for P = 1,
  7 for P = 7 when the frame has max_context rows) changes every decoded bar.
* `pred_p1_upstream_amount` differs from `pred_p1` in every (setting, origin), in all six
  features (the amount column changes the z-scored input and thus the tokens).
* `top_k=1` is greedy: `top_k_top_p_filtering` keeps only the logits equal to the maximum, the
  softmax is one-hot and `torch.multinomial` returns its index whatever the seed (checked).
* Toto samples are Monte-Carlo draws: compare quantiles with a tolerance of a few
  `sqrt(q (1 - q) / N) / density`; `samples` lets a test use any statistic.
* The trading code runs these on CUDA (Kronos in bfloat16 where supported, Toto under float16
  autocast by default); these fixtures are float32 CPU runs of the same calls.
"""


if __name__ == "__main__":
    main()
