"""Load and validate one symbol's daily bars (``<data-dir>/<SYMBOL>.csv``).

The model code takes arrays; pandas stays in this thin loader.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from objectives.exceptions import DataError

PRICE_COLUMNS = ("open", "high", "low", "close")
#: the longest ticker accepted: far above any exchange's (OCC option symbols have 21
#: characters, crypto pairs such as 1000SHIBUSDT 12), and short enough that every file named
#: after it (``.<SYMBOL>.json.<random>.tmp``, ``<study name>.png``) stays well inside the
#: 255-byte file name limit
MAX_SYMBOL_LENGTH = 64
SYMBOL_PATTERN = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9._\-]{{0,{MAX_SYMBOL_LENGTH - 1}}}\Z")
_SYMBOL_CHARS = "letters, digits, '.', '_', '-'"

log = logging.getLogger(__name__)

# Numeric timestamps are epoch times; the unit is told by magnitude. Each unit is accepted
# for dates from about 1970-03-25 up to (not including) 2200-01-01, so the bands tile
# [_EPOCH_END_S / 1000, _EPOCH_END_S * 1e9) in seconds-equivalents without overlapping.
_EPOCH_END_S = 7_258_118_400  # 2200-01-01T00:00:00Z in epoch seconds
_EPOCH_UNITS = (  # name, nanoseconds per unit, [low, high) of the raw value
    ("seconds", 10**9, _EPOCH_END_S / 1e3, _EPOCH_END_S),
    ("milliseconds", 10**6, _EPOCH_END_S, _EPOCH_END_S * 1e3),
    ("microseconds", 10**3, _EPOCH_END_S * 1e3, _EPOCH_END_S * 1e6),
    ("nanoseconds", 1, _EPOCH_END_S * 1e6, _EPOCH_END_S * 1e9),
)


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


def ticker_problem(symbol: object) -> str | None:
    """Why ``symbol`` is not a plain ticker (the character, or the length), or ``None``."""
    if not isinstance(symbol, str):
        return f"it is a {type(symbol).__name__}, not text"
    if not symbol:
        return "it is empty"
    if len(symbol) > MAX_SYMBOL_LENGTH:
        return f"it has {len(symbol)} characters, more than {MAX_SYMBOL_LENGTH}"
    if not symbol[0].isascii() or not symbol[0].isalnum():
        return f"it starts with {symbol[0]!r}, not a letter or digit"
    for position, char in enumerate(symbol, start=1):
        if not (char.isascii() and (char.isalnum() or char in "._-")):
            return f"{char!r} at position {position} is not allowed ({_SYMBOL_CHARS})"
    if ".." in symbol:
        return "'..' is not allowed"
    return None


def check_symbol(symbol: str) -> str:
    """Return ``symbol`` if it is a plain ticker, else raise ``DataError`` saying why."""
    problem = ticker_problem(symbol)
    if problem is not None:
        raise DataError(f"symbol {_shown(symbol)} is not a plain ticker: {problem}")
    return symbol


def _shown(symbol: object) -> str:
    """``repr`` of ``symbol``, a long one cut in the middle (the message stays one line)."""
    text = repr(symbol)
    return text if len(text) <= 40 else f"{text[:20]}...{text[-12:]}"


def csv_path(data_dir: Path, symbol: str) -> Path:
    return Path(data_dir) / f"{check_symbol(symbol)}.csv"


def _check_data_dir(data_dir: Path) -> None:
    if data_dir.is_file():
        raise DataError(f"--data-dir {data_dir} is a file, not a folder of <SYMBOL>.csv files")
    if not data_dir.is_dir():
        raise DataError(f"--data-dir '{data_dir}' does not exist")


def _is_ticker(stem: str) -> bool:
    return ticker_problem(stem) is None


def list_symbols_and_skipped(data_dir: Path) -> tuple[list[str], list[str]]:
    """``(symbols, skipped)``: the plain-ticker stems of every ``*.csv`` file in ``data_dir``,
    and the file names of the other ``*.csv`` entries (not a plain ticker, or not a file)."""
    data_dir = Path(data_dir)
    _check_data_dir(data_dir)
    symbols: list[str] = []
    skipped: list[str] = []
    for path in sorted(data_dir.glob("*.csv")):
        if path.is_file() and _is_ticker(path.stem):
            symbols.append(path.stem)
        else:
            skipped.append(path.name)
    if not symbols:
        also = f" (skipped, not plain tickers: {', '.join(skipped)})" if skipped else ""
        raise DataError(f"no <SYMBOL>.csv files in {data_dir}{also}")
    return sorted(symbols), sorted(skipped)


def list_symbols(data_dir: Path) -> list[str]:
    """Symbols of every ``*.csv`` in ``data_dir`` whose stem is a plain ticker; the other
    ``*.csv`` files are skipped with a logged warning naming them."""
    symbols, skipped = list_symbols_and_skipped(data_dir)
    if skipped:
        log.warning(
            "skipping %d file(s) in %s whose names are not plain tickers: %s",
            len(skipped),
            data_dir,
            ", ".join(skipped),
        )
    return symbols


def load_bars(data_dir: Path, symbol: str) -> Bars:
    """Read and validate ``<data_dir>/<symbol>.csv``; raise ``DataError`` on any defect."""
    path = csv_path(data_dir, symbol)
    if Path(data_dir).is_file():
        raise DataError(f"--data-dir {data_dir} is a file, not a folder of <SYMBOL>.csv files")
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
    stamps = _timestamps(frame["timestamp"], source)
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
    below = prices[:, 1] < prices[:, 2]
    if below.any():
        row = int(np.flatnonzero(below)[0])
        raise DataError(
            f"{source}: high below low "
            f"(row {row + 1}: high {float(prices[row, 1])!r} < low {float(prices[row, 2])!r})"
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


def _timestamps(column: pd.Series, source: str) -> pd.Series:
    """The ``timestamp`` column as naive UTC datetimes: dates as text (ISO 8601, any time
    zone) or numbers (epoch seconds, milliseconds, microseconds or nanoseconds)."""
    if column.isna().any():
        raise DataError(f"{source}: column timestamp has empty values")
    numbers = _as_numbers(column)
    if numbers is not None:
        return _from_numbers(numbers, column, source)
    try:
        stamps = pd.to_datetime(column, utc=True, format="mixed")
    except (ValueError, TypeError, OverflowError):
        raise DataError(f"{source}: column timestamp has values that are not dates") from None
    if stamps.isna().any():
        raise DataError(f"{source}: column timestamp has empty values")
    return stamps.dt.tz_localize(None)  # naive UTC


def _as_numbers(column: pd.Series) -> np.ndarray | None:
    """The column as int64 or float64 when every value is a number (or numeric text)."""
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_datetime64_any_dtype(column):
        return None
    if pd.api.types.is_integer_dtype(column):
        return column.to_numpy(dtype=np.int64)
    if pd.api.types.is_float_dtype(column):
        return column.to_numpy(dtype=np.float64)
    if any(isinstance(v, (bool, np.bool_)) for v in column):
        return None
    as_number = pd.to_numeric(column, errors="coerce")
    if as_number.isna().any():
        return None
    if pd.api.types.is_integer_dtype(as_number):
        return as_number.to_numpy(dtype=np.int64)
    return as_number.to_numpy(dtype=np.float64)


def _from_numbers(numbers: np.ndarray, column: pd.Series, source: str) -> pd.Series:
    yyyymmdd = _yyyymmdd(numbers)
    if yyyymmdd is not None:
        return pd.Series(yyyymmdd, index=column.index)
    units = np.full(len(numbers), -1)
    with np.errstate(invalid="ignore"):
        for index, (_, _, low, high) in enumerate(_EPOCH_UNITS):
            units[(numbers >= low) & (numbers < high)] = index
    if (units < 0).any():
        row = int(np.flatnonzero(units < 0)[0])
        raise DataError(
            f"{source}: column timestamp is numeric but not epoch seconds, milliseconds, "
            f"microseconds or nanoseconds (row {row + 1}: {column.iloc[row]})"
        )
    if (units != units[0]).any():
        row = int(np.flatnonzero(units != units[0])[0])
        raise DataError(
            f"{source}: column timestamp mixes epoch units "
            f"(row 1: {column.iloc[0]} is {_EPOCH_UNITS[units[0]][0]}, "
            f"row {row + 1}: {column.iloc[row]} is {_EPOCH_UNITS[units[row]][0]})"
        )
    per_unit = _EPOCH_UNITS[units[0]][1]
    if numbers.dtype.kind == "i":
        nanoseconds = numbers * per_unit  # exact; the bands keep this inside int64
    else:
        nanoseconds = np.round(numbers * float(per_unit)).astype(np.int64)
    return pd.Series(nanoseconds.astype("datetime64[ns]"), index=column.index)


def _yyyymmdd(numbers: np.ndarray) -> np.ndarray | None:
    """Dates written as the integers ``YYYYMMDD`` (e.g. ``20200131``), when every value is
    one; as epoch seconds these would all fall within August 1970."""
    if not (numbers == np.round(numbers)).all():
        return None
    if not ((numbers >= 19000101) & (numbers <= 22001231)).all():
        return None
    text = pd.Series(numbers.astype(np.int64).astype(str))
    parsed = pd.to_datetime(text, format="%Y%m%d", errors="coerce")
    if parsed.isna().any():
        return None
    return parsed.to_numpy(dtype="datetime64[ns]")
