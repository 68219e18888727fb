"""Loading and validating a symbol's CSV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from objectives.bars import check_symbol, list_symbols, load_bars
from objectives.exceptions import DataError

HEADER = "timestamp,open,high,low,close,volume\n"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.csv"
    path.write_text(text)
    return path


def test_the_shared_bars_load_in_order_with_every_column(shared_data: Path) -> None:
    bars = load_bars(shared_data, "ETHUSD")
    rows = sum(1 for _ in open(shared_data / "ETHUSD.csv")) - 1
    assert len(bars) == rows
    assert np.all(np.diff(bars.timestamps.astype(np.int64)) > 0)
    assert bars.prices.shape == (rows, 4) and bars.volume is not None and bars.amount is None
    assert bars.close[0] == pytest.approx(2.77212)


def test_rows_are_sorted_and_timezones_normalised_to_utc(tmp_path: Path) -> None:
    write(
        tmp_path,
        "X",
        HEADER + "2020-01-02T00:00:00+01:00,2,2,2,2,1\n2020-01-01T00:00:00Z,1,1,1,1,1\n",
    )
    bars = load_bars(tmp_path, "X")
    assert list(bars.close) == [1.0, 2.0]
    assert str(bars.timestamps[1]) == "2020-01-01T23:00:00.000000000"


def test_volume_and_amount_are_optional(tmp_path: Path) -> None:
    write(tmp_path, "NOVOL", "timestamp,open,high,low,close\n2020-01-01,1,1,1,1\n")
    write(tmp_path, "AMT", HEADER.strip() + ",amount\n2020-01-01,1,1,1,1,5,5\n")
    assert load_bars(tmp_path, "NOVOL").volume is None
    assert load_bars(tmp_path, "AMT").amount is not None


def test_a_byte_order_mark_and_capitalised_headers_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "BOM.csv"
    path.write_bytes(("\ufeff" + HEADER.title() + "2020-01-01,1,1,1,1,1\n").encode("utf-8"))
    assert len(load_bars(tmp_path, "BOM")) == 1


def test_a_file_with_only_a_header_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "HDR", HEADER)
    with pytest.raises(DataError, match="no rows"):
        load_bars(tmp_path, "HDR")


def test_the_fingerprint_covers_only_the_rows_asked_for(shared_data: Path) -> None:
    bars = load_bars(shared_data, "BTCUSD")
    changed = load_bars(shared_data, "BTCUSD")
    changed.prices[-1, 3] *= 2
    assert bars.fingerprint(100) == changed.fingerprint(100)
    assert bars.fingerprint() != changed.fingerprint()


@pytest.mark.parametrize("symbol", ["BTCUSD", "BRK.B", "ES_F", "X-1"])
def test_plain_tickers_pass(symbol: str) -> None:
    assert check_symbol(symbol) == symbol


def test_list_symbols_skips_names_that_are_not_tickers(tmp_path: Path) -> None:
    write(tmp_path, "AAA", HEADER)
    write(tmp_path, "b b", HEADER)
    assert list_symbols(tmp_path) == ["AAA"]
    with pytest.raises(DataError, match="does not exist"):
        list_symbols(tmp_path / "missing")
