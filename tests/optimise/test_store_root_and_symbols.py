"""The store root and the symbols' spelling, as the trading code reads them.

The trading code's ``hyperparamstore/store.py`` reads ``$HYPERPARAM_ROOT`` (else
``hyperparams``) and asks for ``<root>/<model>/<SYMBOL>.json`` with upper-case tickers.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from optimise.parser import build_parser
from tests.conftest import launch_fake, run_cli

COMMANDS = {
    "launch": ["launch", "--model", "fake", "--symbols", "AAPL"],
    "export": ["export", "--model", "fake", "--all"],
    "forecast": ["forecast", "--model", "fake", "--symbol", "AAPL", "--from-store"],
}


# --- --store and $HYPERPARAM_ROOT ---------------------------------------------------------------


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_store_defaults_to_hyperparam_root_when_set(
    command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HYPERPARAM_ROOT", "/srv/trading/hyperparams")
    assert build_parser().parse_args(COMMANDS[command]).store == "/srv/trading/hyperparams"
    given = build_parser().parse_args([*COMMANDS[command], "--store", "elsewhere"])
    assert given.store == "elsewhere"


@pytest.mark.parametrize("value", [None, ""])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_store_defaults_to_store_otherwise(
    command: str, value: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if value is None:
        monkeypatch.delenv("HYPERPARAM_ROOT", raising=False)
    else:
        monkeypatch.setenv("HYPERPARAM_ROOT", value)
    assert build_parser().parse_args(COMMANDS[command]).store == "store"


def test_the_help_names_the_variable_and_the_default_in_force(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HYPERPARAM_ROOT", "/srv/hp")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["export", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "$HYPERPARAM_ROOT" in text and "(default: /srv/hp)" in text


def test_launch_exports_into_hyperparam_root(
    workdir: Path, sample_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = workdir / "trading" / "hyperparams"
    monkeypatch.setenv("HYPERPARAM_ROOT", str(root))
    assert launch_fake(sample_data, 3) == 0
    assert (root / "fake" / "AAPL.json").is_file()
    assert (root / "best" / "AAPL.json").is_file()
    assert not (workdir / "store").exists()


# --- symbols that are not upper-case --------------------------------------------------------------


def _lower_case_data(workdir: Path, sample_data: Path) -> Path:
    data = workdir / "data"
    data.mkdir()
    shutil.copy(sample_data / "AAPL.csv", data / "aapl.csv")
    return data


def _expected(store: Path | str, symbol: str) -> str:
    return f"the trading code will look for {Path(store) / 'fake' / f'{symbol}.json'}"


def test_a_lower_case_symbol_is_warned_with_the_file_the_trading_code_opens(
    workdir: Path, sample_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _lower_case_data(workdir, sample_data)
    code = run_cli(
        "launch", "--model", "fake", "--symbols", "aapl", "--data-dir", data,
        "--n-trials", 2, "--no-progress",
    )  # fmt: skip
    assert code == 0
    err = capsys.readouterr().err
    assert "warning: symbol aapl is not upper-case" in err
    assert _expected("store", "AAPL") in err
    assert str(Path("store") / "fake" / "aapl.json") in err  # where its record does go
    assert (workdir / "store" / "fake" / "aapl.json").is_file()

    # export of that study, by name and with --all, says the same (with the store given)
    for how in (["--symbols", "aapl", "--data-dir", str(data)], ["--all"]):
        assert run_cli("export", "--model", "fake", *how, "--store", workdir / "hp") == 0
        err = capsys.readouterr().err
        assert _expected(workdir / "hp", "AAPL") in err, how


def test_every_csv_of_all_that_is_not_upper_case_is_warned(
    workdir: Path, sample_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _lower_case_data(workdir, sample_data)
    shutil.copy(sample_data / "GOOG.csv", data / "GOOG.csv")
    shutil.copy(sample_data / "MSFT.csv", data / "Msft.csv")
    code = run_cli(
        "launch", "--model", "fake", "--all", "--data-dir", data, "--n-trials", 2,
        "--no-progress",
    )  # fmt: skip
    assert code == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if "upper-case" in line]
    assert len(warnings) == 2
    assert _expected("store", "MSFT") in warnings[0]  # in the order launched: Msft, then aapl
    assert _expected("store", "AAPL") in warnings[1]


@pytest.mark.parametrize("symbol", ["AAPL", "BRK.B", "ADA-USD", "ES_F", "1234"])
def test_upper_case_symbols_are_not_warned(
    symbol: str, workdir: Path, sample_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = workdir / "data"
    data.mkdir()
    shutil.copy(sample_data / "AAPL.csv", data / f"{symbol}.csv")
    code = run_cli(
        "launch", "--model", "fake", "--symbols", symbol, "--data-dir", data,
        "--n-trials", 1, "--no-progress",
    )  # fmt: skip
    assert code == 0
    assert "upper-case" not in capsys.readouterr().err
