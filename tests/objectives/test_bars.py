"""Loading and validating a symbol's CSV."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from objectives.bars import (
    bars_from_frame,
    check_symbol,
    list_symbols,
    list_symbols_and_skipped,
    load_bars,
)
from objectives.exceptions import DataError

HEADER = "timestamp,open,high,low,close,volume\n"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.csv"
    path.write_text(text)
    return path


def test_the_sample_bars_load_in_order_with_every_column(sample_data: Path) -> None:
    bars = load_bars(sample_data, "IBM")
    rows = sum(1 for _ in open(sample_data / "IBM.csv")) - 1
    assert len(bars) == rows
    assert np.all(np.diff(bars.timestamps.astype(np.int64)) > 0)
    assert bars.prices.shape == (rows, 4) and bars.volume is not None and bars.amount is None
    first_close = float(open(sample_data / "IBM.csv").readlines()[1].strip().split(",")[4])
    assert bars.close[0] == first_close


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


def test_the_fingerprint_covers_only_the_rows_asked_for(sample_data: Path) -> None:
    bars = load_bars(sample_data, "GOOG")
    changed = load_bars(sample_data, "GOOG")
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


def test_list_symbols_refuses_a_data_dir_that_is_a_file(tmp_path: Path) -> None:
    path = write(tmp_path, "AAA", HEADER)
    message = f"--data-dir {path} is a file, not a folder of <SYMBOL>.csv files"
    with pytest.raises(DataError) as caught:
        list_symbols(path)
    assert str(caught.value) == message
    with pytest.raises(DataError) as caught:
        list_symbols_and_skipped(path)
    assert str(caught.value) == message
    with pytest.raises(DataError) as caught:
        load_bars(path, "AAA")
    assert str(caught.value) == message


def test_a_missing_data_dir_is_named_in_quotes(tmp_path: Path) -> None:
    missing = tmp_path / "no such dir"
    with pytest.raises(DataError) as caught:
        list_symbols(missing)
    assert f"'{missing}'" in str(caught.value)
    assert "does not exist" in str(caught.value)


def test_skipped_file_names_are_returned_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path, "AAA", HEADER)
    write(tmp_path, "BBB", HEADER)
    write(tmp_path, "b b", HEADER)
    write(tmp_path, "a..b", HEADER)
    (tmp_path / "notes.txt").write_text("not a csv")
    assert list_symbols_and_skipped(tmp_path) == (["AAA", "BBB"], ["a..b.csv", "b b.csv"])
    with caplog.at_level(logging.WARNING, logger="objectives.bars"):
        assert list_symbols(tmp_path) == ["AAA", "BBB"]
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and "b b.csv" in warned[0] and "a..b.csv" in warned[0]


def test_no_warning_when_nothing_is_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path, "AAA", HEADER)
    with caplog.at_level(logging.WARNING, logger="objectives.bars"):
        assert list_symbols(tmp_path) == ["AAA"]
    assert not caplog.records


def test_a_folder_with_only_skipped_names_says_which(tmp_path: Path) -> None:
    write(tmp_path, "b b", HEADER)
    with pytest.raises(DataError, match=r"no <SYMBOL>\.csv files .*b b\.csv"):
        list_symbols_and_skipped(tmp_path)


EPOCH_2020 = {  # 2020-09-13T12:26:40Z and one day later, in each unit
    "seconds": ("1600000000", "1600086400"),
    "milliseconds": ("1600000000000", "1600086400000"),
    "microseconds": ("1600000000000000", "1600086400000000"),
    "nanoseconds": ("1600000000000000000", "1600086400000000000"),
    "float seconds": ("1600000000.0", "1600086400.5"),
    "float milliseconds": ("1600000000000.0", "1600086400000.0"),
}


@pytest.mark.parametrize("unit", sorted(EPOCH_2020))
def test_numeric_timestamps_are_read_as_epoch_in_the_unit_their_size_shows(
    tmp_path: Path, unit: str
) -> None:
    first, second = EPOCH_2020[unit]
    write(tmp_path, "EP", HEADER + f"{second},2,2,2,2,1\n{first},1,1,1,1,1\n")
    bars = load_bars(tmp_path, "EP")
    assert list(bars.close) == [1.0, 2.0]
    assert str(bars.timestamps[0]) == "2020-09-13T12:26:40.000000000"
    later = "2020-09-14T12:26:40.500000000" if unit == "float seconds" else "2020-09-14T12:26:40"
    assert bars.timestamps[1] == np.datetime64(later, "ns")


def test_epoch_seconds_near_the_ends_of_the_range_are_accepted(tmp_path: Path) -> None:
    # 1971-01-01 and 2199-12-31, both epoch seconds
    write(tmp_path, "ENDS", HEADER + "31536000,1,1,1,1,1\n7258032000,1,1,1,1,1\n")
    bars = load_bars(tmp_path, "ENDS")
    assert [str(t)[:10] for t in bars.timestamps] == ["1971-01-01", "2199-12-31"]


def test_epoch_timestamps_in_a_frame_of_numeric_text_are_read_too() -> None:
    frame = pd.DataFrame(
        {"timestamp": ["1600000000"], "open": [1], "high": [1], "low": [1], "close": [1]}
    )
    bars = bars_from_frame(frame, "T")
    assert str(bars.timestamps[0]) == "2020-09-13T12:26:40.000000000"


def test_yyyymmdd_integers_are_read_as_dates_not_as_seconds(tmp_path: Path) -> None:
    write(tmp_path, "YMD", HEADER + "20200131,1,1,1,1,1\n20200203,2,2,2,2,1\n")
    bars = load_bars(tmp_path, "YMD")
    assert [str(t)[:10] for t in bars.timestamps] == ["2020-01-31", "2020-02-03"]


def test_epoch_timestamps_in_mixed_units_are_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "MIX",
        HEADER + "1600000000,1,1,1,1,1\n1600086400,1,1,1,1,1\n1600172800000,1,1,1,1,1\n",
    )
    with pytest.raises(DataError) as caught:
        load_bars(tmp_path, "MIX")
    message = str(caught.value)
    assert message.startswith(f"{path}: column timestamp mixes epoch units")
    assert "row 3: 1600172800000 is milliseconds" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("stamps", "shown"),
    [
        (("1", "2", "12"), "row 1: 1"),
        (("1600000000", "1600086400", "12"), "row 3: 12"),
        (("1600000000", "-5", "1600172800"), "row 2: -5"),
        (("1600000000", "1600086400", "9000000000000000000"), "row 3: 9000000000000000000"),
        (("1600000000.0", "inf", "1600172800.0"), "row 2: inf"),
    ],
)
def test_numbers_that_are_not_epoch_times_are_refused(
    tmp_path: Path, stamps: tuple[str, ...], shown: str
) -> None:
    path = write(tmp_path, "NUM", HEADER + "".join(f"{s},1,1,1,1,1\n" for s in stamps))
    with pytest.raises(DataError) as caught:
        load_bars(tmp_path, "NUM")
    assert str(caught.value) == (
        f"{path}: column timestamp is numeric but not epoch seconds, milliseconds, "
        f"microseconds or nanoseconds ({shown})"
    )


def test_an_empty_numeric_timestamp_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "GAP", HEADER + "1600000000,1,1,1,1,1\n,1,1,1,1,1\n")
    with pytest.raises(DataError, match="column timestamp has empty values"):
        load_bars(tmp_path, "GAP")


def test_iso_dates_with_a_date_column_still_work(tmp_path: Path) -> None:
    write(
        tmp_path,
        "DATE",
        "Date,Open,High,Low,Close\n2020-01-02 00:00:00-05:00,2,2,2,2\n2020-01-01,1,1,1,1\n",
    )
    bars = load_bars(tmp_path, "DATE")
    assert [str(t) for t in bars.timestamps] == [
        "2020-01-01T00:00:00.000000000",
        "2020-01-02T05:00:00.000000000",
    ]


def test_high_below_low_is_refused_with_the_row(tmp_path: Path) -> None:
    rows = [f"2020-01-{day:02d},11,12,10,11,1\n" for day in range(1, 12)]
    rows.append("2020-01-12,10.7,10.5,11.0,10.8,1\n")
    path = write(tmp_path, "HL", HEADER + "".join(rows))
    with pytest.raises(DataError) as caught:
        load_bars(tmp_path, "HL")
    assert str(caught.value) == f"{path}: high below low (row 12: high 10.5 < low 11.0)"


def test_open_or_close_slightly_outside_high_and_low_is_accepted(tmp_path: Path) -> None:
    # split-adjusted and crypto feeds do this; only high < low is refused
    write(tmp_path, "ADJ", HEADER + "2020-01-01,10.0000001,10,9,8.9999,1\n2020-01-02,5,5,5,5,1\n")
    bars = load_bars(tmp_path, "ADJ")
    assert bars.prices[0].tolist() == [10.0000001, 10.0, 9.0, 8.9999]
