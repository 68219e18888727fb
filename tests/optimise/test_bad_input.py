"""The bad-input table (README, "Data"): one `error:` line, exit code 2, and nothing written
(in a sweep of several symbols, nothing for the bad one: the others run)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import run_cli, run_cli_process


def good_frame(rows: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, rows)))
    return pd.DataFrame(
        {
            "timestamp": pd.date_range("2020-01-01", periods=rows, freq="D", tz="UTC"),
            "open": close,
            "high": close * 1.01,
            "low": close * 0.99,
            "close": close,
            "volume": rng.uniform(1e3, 1e4, rows),
        }
    )


def _nan(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[50, "close"] = np.nan
    return frame


def _inf(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[60, "high"] = np.inf
    return frame


def _text(frame: pd.DataFrame) -> pd.DataFrame:
    frame["open"] = frame["open"].astype(object)
    frame.loc[10, "open"] = "abc"
    return frame


def _zero(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[70, "low"] = 0.0
    return frame


def _negative(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[71, "close"] = -5.0
    return frame


def _duplicate(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[100, "timestamp"] = frame.loc[99, "timestamp"]
    return frame


def _bad_dates(frame: pd.DataFrame) -> pd.DataFrame:
    frame["timestamp"] = frame["timestamp"].astype(str)
    frame.loc[5, "timestamp"] = "not a date"
    return frame


CASES = {
    "missing close column": (lambda f: f.drop(columns=["close"]), "missing column(s) close"),
    "missing timestamp column": (lambda f: f.drop(columns=["timestamp"]), "timestamp"),
    "non-numeric open": (_text, "not numeric"),
    "NaN close": (_nan, "NaN or inf"),
    "inf high": (_inf, "NaN or inf"),
    "zero low": (_zero, "non-positive price"),
    "negative close": (_negative, "non-positive price"),
    "duplicate timestamp": (_duplicate, "duplicate timestamp"),
    "too few rows": (lambda f: f.iloc[:100], "too few rows"),
    "unparseable timestamp": (_bad_dates, "not dates"),
}


def assert_refused(code: int, err: str, fragment: str, workdir: Path) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert fragment in lines[0]
    assert "Traceback" not in err
    assert not (workdir / "studies.db").exists()
    assert not (workdir / "store").exists()


def launch(data_dir: Path, *symbols: str, extra: tuple[str, ...] = ()) -> int:
    return run_cli(
        "launch",
        "--model",
        "fake",
        "--symbols",
        *symbols,
        "--data-dir",
        data_dir,
        "--n-trials",
        "2",
        "--no-progress",
        *extra,
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_defective_csv_is_refused_with_one_line_and_nothing_written(
    case: str, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corrupt, fragment = CASES[case]
    data = workdir / "data"
    data.mkdir()
    corrupt(good_frame()).to_csv(data / "SYM.csv", index=False)
    code = launch(data, "SYM")
    assert_refused(code, capsys.readouterr().err, fragment, workdir)


def test_a_missing_file_is_refused(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (workdir / "data").mkdir()
    code = launch(workdir / "data", "NOPE")
    assert_refused(code, capsys.readouterr().err, "does not exist", workdir)


def test_an_empty_file_is_refused(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (workdir / "data").mkdir()
    (workdir / "data" / "EMPTY.csv").write_text("")
    code = launch(workdir / "data", "EMPTY")
    assert_refused(code, capsys.readouterr().err, "not a readable CSV", workdir)


@pytest.mark.parametrize("symbol", ["../x", "a/b", "", "..", "x y"])
def test_a_symbol_that_is_not_a_plain_ticker_is_refused(
    symbol: str, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "data").mkdir()
    good_frame().to_csv(workdir / "data" / "OK.csv", index=False)
    code = launch(workdir / "data", symbol)
    assert_refused(code, capsys.readouterr().err, "plain ticker", workdir)


def test_one_bad_symbol_among_good_ones_is_skipped_in_a_sweep(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Several symbols are a sweep (tests/optimise/test_sweeps.py): the bad one is one
    ``error:`` line and written nowhere, the good one runs, the exit code is still 2."""
    data = workdir / "data"
    data.mkdir()
    good_frame().to_csv(data / "GOOD.csv", index=False)
    _nan(good_frame()).to_csv(data / "BAD.csv", index=False)
    code = launch(data, "GOOD", "BAD")
    err = capsys.readouterr().err
    assert code == 2
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith("error: BAD: ") and "NaN or inf" in errors[0]
    assert "Traceback" not in err
    assert (workdir / "store" / "fake" / "GOOD.json").is_file()
    assert not (workdir / "store" / "fake" / "BAD.json").exists()


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (("--val-window", "0"), "--val-window must be at least 1"),
        (("--storage", "mysql://x@y/z"), "not supported"),
        (("--storage", "not a url"), "not a database URL"),
        (("--checkpoint", "/no/such/folder"), "neither an existing folder"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_written(
    extra: tuple[str, ...], fragment: str, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "data").mkdir()
    good_frame().to_csv(workdir / "data" / "OK.csv", index=False)
    if extra[0] == "--checkpoint":
        code = run_cli(
            "launch",
            "--model",
            "toto",
            "--symbols",
            "OK",
            "--data-dir",
            workdir / "data",
            "--n-trials",
            "2",
            *extra,
        )
    else:
        code = launch(workdir / "data", "OK", extra=extra)
    assert_refused(code, capsys.readouterr().err, fragment, workdir)


def test_the_installed_command_prints_one_line_and_no_traceback(workdir: Path) -> None:
    (workdir / "data").mkdir()
    _duplicate(good_frame()).to_csv(workdir / "data" / "DUP.csv", index=False)
    result = run_cli_process(
        "launch",
        "--model",
        "fake",
        "--symbols",
        "DUP",
        "--data-dir",
        workdir / "data",
        "--storage",
        f"sqlite:///{workdir / 'studies.db'}",
        "--store",
        workdir / "store",
    )
    assert_refused(result.returncode, result.stderr, "duplicate timestamp", workdir)


def test_an_unknown_model_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_cli("launch", "--model", "prophet", "--symbols", "X")
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().count("\n") == 0
