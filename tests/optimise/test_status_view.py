"""``status`` as a quant reads it: 100 columns by default with the objective's unit named,
``--wide`` for every column, ``--json`` for scripts, ``--model``/``--symbols`` filters,
``--watch N``; the warnings after the table, each once. And ``forecast``'s summary line, band
and the record's naive warning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import optimise.status
from optimise.status import HEADER
from tests.conftest import SAMPLE_DATA, run_cli

STUDY = "fake:AAPL:v20-t20-h1:trading"
OTHER = "fake:MSFT:v20-t20-h1:trading"
NAIVE = "does not beat the naive forecast"


@pytest.fixture(scope="module")
def finalised(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with finalised fake studies of AAPL and MSFT (the trading task: return MAE),
    made once: the tests here only read them."""
    folder = tmp_path_factory.mktemp("status")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        patch.delenv("OPTIMISE_STORAGE", raising=False)
        patch.delenv("HYPERPARAM_ROOT", raising=False)
        assert run_cli("launch", "--model", "fake", "--symbols", "AAPL", "MSFT", "--data-dir",
                       SAMPLE_DATA, "--n-trials", 2, "--no-progress", "--confirm-candidates", 1,
                       "--confirm-draws", 2, "--no-default-comparison") == 0  # fmt: skip
    return folder


@pytest.fixture
def two_studies(
    finalised: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Path:
    monkeypatch.chdir(finalised)
    monkeypatch.delenv("OPTIMISE_STORAGE", raising=False)
    monkeypatch.delenv("HYPERPARAM_ROOT", raising=False)
    capsys.readouterr()
    return finalised


def test_the_default_table_fits_100_columns_and_names_its_unit(
    two_studies: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("status") == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert max(map(len, lines)) <= 100, out
    assert lines[0] == "return_mae (in % of the price; lower is better):"
    assert "validation" in lines[1] and "test" in lines[1]  # the groups above the columns
    assert lines[2].split() == ["study", "trials", "first", "confirmed", "naive", "once",
                                "naive", "<=0", "live"]  # fmt: skip
    rows = [line for line in lines if line.startswith("fake:")]
    assert [r.split()[0] for r in rows] == [STUDY, OTHER]
    assert all(r.split()[1] == "2" and r.endswith(" yes") for r in rows)
    record = json.loads((two_studies / "store/fake/AAPL.json").read_text())
    test = f"{record['test']['return_mae'] * 100:#.4g}"  # in percent, as the heading says
    assert rows[0].split()[5] == test
    assert str(two_studies) not in out  # no absolute paths
    # warnings: after the table, on stderr, each once (one per study here)
    assert err.startswith("\n") and err.count(NAIVE) == 2
    assert err.count(f"{STUDY}: the winner (trial 0) {NAIVE}") == 1


def test_wide_has_every_column_and_json_every_field(
    two_studies: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("status", "--wide") == 0
    out = capsys.readouterr().out
    header, _, row = out.splitlines()[:3]
    assert header.split()[:10] == HEADER[:10]
    assert row.startswith(STUDY) and str(two_studies / "store") in row
    assert f"  {STUDY} test: price_mae" in out
    assert run_cli("status", "--json") == 0
    out, err = capsys.readouterr()
    entries = json.loads(out)
    assert err == ""  # the warnings are in the entries
    assert [e["study"] for e in entries] == [STUDY, OTHER]
    entry = entries[0]
    assert entry["objective"] == "return_mae" and entry["direction"] == "minimize"
    assert entry["trials"] == {"complete": 2, "pruned": 0, "running": 0, "waiting": 0,
                               "fail": 0, "interrupted": 0}  # fmt: skip
    record = json.loads((two_studies / "store/fake/AAPL.json").read_text())
    assert entry["confirmed"]["value"] == record["validation"]["return_mae"]
    assert entry["test"]["value"] == record["test"]["return_mae"]
    assert entry["test"]["metrics"] == record["test"]["metrics"]
    assert entry["live"] is True and entry["nonpositive_trials"] == 0
    assert entry["export_path"].endswith("studies/fake_AAPL_v20-t20-h1_trading.json")
    assert any(NAIVE in w for w in entry["warnings"])


def test_model_and_symbols_filter_the_table(
    two_studies: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("status", "--symbols", "MSFT") == 0
    out, err = capsys.readouterr()
    assert OTHER in out and STUDY not in out and STUDY not in err
    assert run_cli("status", "--model", "fake", "--symbols", "AAPL", "--json") == 0
    assert [e["study"] for e in json.loads(capsys.readouterr().out)] == [STUDY]
    assert run_cli("status", "--symbols", "ZZZ") == 2
    assert "no study of --symbols ZZZ" in capsys.readouterr().err
    assert run_cli("status", "--model", "toto") == 2


def test_watch_refreshes_until_ctrl_c_and_exits_0_quietly(
    two_studies: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    naps: list[float] = []

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 2:
            raise KeyboardInterrupt  # Ctrl-C during the second wait

    monkeypatch.setattr(optimise.status.time, "sleep", sleep)
    assert run_cli("status", "--watch", "0.5", "--symbols", "AAPL") == 0
    out, err = capsys.readouterr()
    assert naps == [0.5, 0.5]
    assert out.count("(Ctrl-C to stop)") == 2 and out.count(f"\n{STUDY} ") == 2
    assert "interrupted" not in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--watch", "0"], "argument --watch: 0 is not a positive number of seconds"),
        (["--watch", "5", "--json"], "--watch prints the table again"),
        (["--top", "2", "--wide"], "--wide: for the status table, not the leaderboard"),
        (["--wide", "--json"], "not allowed with argument"),
    ],
)
def test_view_flags_that_do_not_fit_are_refused(
    two_studies: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    try:
        code = run_cli("status", *args)
    except SystemExit as exc:  # refused while parsing
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1


def test_forecast_summarises_the_window_with_its_band_and_the_records_warning(
    two_studies: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["forecast", "--model", "fake", "--symbol", "AAPL", "--data-dir", SAMPLE_DATA]
    assert run_cli(*common, "--window", "validation", "--param", "drift=0.001",
                   "--param", "noise=0.01") == 0  # fmt: skip
    out, err = capsys.readouterr()
    last = out.splitlines()[-1]
    assert last.startswith("summary (validation window, 20 targets): return_mae ")
    assert "vs naive" in last and "(skill " in last and "beats naive: " in last
    assert "price MAE" in last and "10%" in out.splitlines()[0] and err == ""
    # --from-store: the record's warning (the winner is the naive forecast), the band in JSON
    assert run_cli(*common, "--from-store", "--last", "2", "--json") == 0
    out, err = capsys.readouterr()
    rows = json.loads(out)
    assert all(r["band_quantiles"] == [0.1, 0.9] for r in rows)
    assert all(r["band_low"] <= r["band_high"] for r in rows)
    assert err.count(NAIVE) == 1
    assert "summary (the last 2 bars): return_mae" in err and "beats naive: no" in err
