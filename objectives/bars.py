"""Load and validate one symbol's daily bars (``<data-dir>/<SYMBOL>.csv``).

The model code takes arrays; pandas stays in this thin loader.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from objectives.exceptions import DataError

PRICE_COLUMNS = ("open", "high", "low", "close")
SYMBOL_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,31}$")


@dataclass(frozen=True, eq=False)
class Bars:
    """A symbol's bars as arrays, oldest first. Row ``i`` is one bar."""

    symbol: str
    timestamps: np.ndarray  # (N,) datetime64[ns], UTC, strictly increasing
    prices: np.ndarray  # (N, 4) float64: open, high, low, close
    volume: np.ndarray | None  # (N,) float64, or None when the file has no volume
    amount: np.ndarray | None  # (N,) float64, or None when the file has no amount

    def __len__(self) -> int:
        return len(self.prices)

    @property
    def close(self) -> np.ndarray:
        return self.prices[:, 3]

    def fingerprint(self, end: int | None = None) -> str:
        """SHA-256 of rows ``[0, end)``: timestamps, prices, volume and amount."""
        end = len(self) if end is None else end
        digest = hashlib.sha256()
        digest.update(self.timestamps[:end].astype("datetime64[ns]").astype(np.int64).tobytes())
        digest.update(np.ascontiguousarray(self.prices[:end]).tobytes())
        for column in (self.volume, self.amount):
            digest.update(b"-" if column is None else np.ascontiguousarray(column[:end]).tobytes())
        return digest.hexdigest()[:16]

    def head(self, end: int) -> Bars:
        """The first ``end`` rows (what a forecaster may see for target ``end``)."""
        return Bars(
            self.symbol,
            self.timestamps[:end],
            self.prices[:end],
            None if self.volume is None else self.volume[:end],
            None if self.amount is None else self.amount[:end],
        )


def check_symbol(symbol: str) -> str:
    """Return ``symbol`` if it is a plain ticker, else raise ``DataError``."""
    if not isinstance(symbol, str) or not SYMBOL_PATTERN.match(symbol) or ".." in symbol:
        raise DataError(f"symbol {symbol!r} is not a plain ticker (letters, digits, '.', '_', '-')")
    return symbol


def csv_path(data_dir: Path, symbol: str) -> Path:
    return Path(data_dir) / f"{check_symbol(symbol)}.csv"


def list_symbols(data_dir: Path) -> list[str]:
    """Symbols of every ``*.csv`` in ``data_dir`` whose stem is a plain ticker."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"data directory {data_dir} does not exist")
    symbols = sorted(p.stem for p in data_dir.glob("*.csv") if SYMBOL_PATTERN.match(p.stem))
    if not symbols:
        raise DataError(f"no <SYMBOL>.csv files in {data_dir}")
    return symbols


def load_bars(data_dir: Path, symbol: str) -> Bars:
    """Read and validate ``<data_dir>/<symbol>.csv``; raise ``DataError`` on any defect."""
    path = csv_path(data_dir, symbol)
    if not path.is_file():
        raise DataError(f"no data for {symbol}: {path} does not exist")
    try:
        frame = pd.read_csv(path, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{path}: not a readable CSV ({reason})") from None
    return bars_from_frame(frame, symbol, source=str(path))


def bars_from_frame(frame: pd.DataFrame, symbol: str, source: str = "data") -> Bars:
    """Validate a frame with ``timestamp, open, high, low, close[, volume][, amount]``."""
    frame = frame.rename(columns=lambda c: str(c).strip().lower())
    if "timestamp" not in frame.columns and "date" in frame.columns:
        frame = frame.rename(columns={"date": "timestamp"})
    missing = [c for c in ("timestamp", *PRICE_COLUMNS) if c not in frame.columns]
    if missing:
        raise DataError(f"{source}: missing column(s) {', '.join(missing)}")
    if len(frame) == 0:
        raise DataError(f"{source}: no rows")
    try:
        stamps = pd.to_datetime(frame["timestamp"], utc=True, format="mixed")
    except (ValueError, TypeError):
        raise DataError(f"{source}: column timestamp has values that are not dates") from None
    if stamps.isna().any():
        raise DataError(f"{source}: column timestamp has empty values")
    stamps = stamps.dt.tz_localize(None)  # naive UTC
    numeric = [c for c in (*PRICE_COLUMNS, "volume", "amount") if c in frame.columns]
    values: dict[str, np.ndarray] = {}
    for column in numeric:
        as_number = pd.to_numeric(frame[column], errors="coerce")
        bad = as_number.isna() & frame[column].notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(
                f"{source}: column {column} is not numeric "
                f"(row {row + 1}: {frame[column].iloc[row]!r})"
            )
        array = as_number.to_numpy(dtype=np.float64)
        if not np.isfinite(array).all():
            row = int(np.flatnonzero(~np.isfinite(array))[0])
            raise DataError(f"{source}: column {column} has NaN or inf (row {row + 1})")
        values[column] = array
    prices = np.stack([values[c] for c in PRICE_COLUMNS], axis=1)
    if (prices <= 0).any():
        row, col = (int(i[0]) for i in np.nonzero(prices <= 0))
        raise DataError(
            f"{source}: non-positive price in column {PRICE_COLUMNS[col]} (row {row + 1})"
        )
    for column in ("volume", "amount"):
        if column in values and (values[column] < 0).any():
            raise DataError(f"{source}: negative {column}")
    order = np.argsort(stamps.to_numpy(), kind="stable")
    ordered = stamps.to_numpy()[order]
    duplicated = ordered[1:] == ordered[:-1]
    if duplicated.any():
        when = pd.Timestamp(ordered[1:][duplicated][0]).isoformat()
        raise DataError(f"{source}: duplicate timestamp {when}")
    timestamps = ordered.astype("datetime64[ns]")
    return Bars(
        symbol=symbol,
        timestamps=timestamps,
        prices=prices[order],
        volume=values["volume"][order] if "volume" in values else None,
        amount=values["amount"][order] if "amount" in values else None,
    )
