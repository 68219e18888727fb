"""Issue 24, item 4: sweeps (``launch --all``, ``--symbols`` with several). A symbol that fails
on its own is one line and skipped, the others complete, a table ends the run, and the exit
code is 2 when any symbol failed; two workers on PostgreSQL share one sweep."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState
from sqlalchemy.exc import OperationalError

from objectives.exceptions import DataError
from optimise.sweep import Outcome, Plan, Steps, concerns_the_run, run_sweep
from storage.exceptions import DatabaseUnreachableError, StorageError
from studies.exceptions import StudyError
from studies.owners import WORKER_ATTR
from tests.conftest import REPO, SAMPLE_DATA, cli_env, run_cli
from tests.processes import CEILING_S

#: cheap studies: few trials, short windows, a small confirmation, no trading-defaults scoring
FAST = [
    "--n-trials", "2", "--val-window", "5", "--test-window", "5", "--confirm-candidates", "1",
    "--confirm-draws", "2", "--no-default-comparison",
]  # fmt: skip


def sweep(data: Path, *how: str) -> int:
    return run_cli("launch", "--model", "fake", *how, "--data-dir", data, *FAST)


def good_data(workdir: Path, *symbols: str) -> Path:
    data = workdir / "data"
    data.mkdir(exist_ok=True)
    for symbol in symbols:
        shutil.copy(SAMPLE_DATA / f"{symbol}.csv", data / f"{symbol}.csv")
    return data


def table(out: str) -> dict[str, list[str]]:
    """The sweep table's rows by symbol (cells split on runs of two or more spaces)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("symbol "))
    rows = {}
    for line in lines[start + 2 :]:
        if not line.strip() or line.startswith(("not finished", "dashboard:")):
            break
        cells = [c for c in line.rstrip().split("  ") if c]
        rows[cells[0].strip()] = [c.strip() for c in cells]
    return rows


def errors(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error: ")]


def test_one_bad_csv_among_good_ones_is_skipped_and_the_others_complete(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = good_data(workdir, "AAPL", "GOOG")
    frame = pd.read_csv(data / "AAPL.csv")
    frame.loc[50, "close"] = float("nan")
    frame.to_csv(data / "BAD.csv", index=False)
    assert sweep(data, "--all", "--no-progress") == 2
    out, err = capsys.readouterr()
    assert errors(err) == [
        f"error: BAD: {data / 'BAD.csv'}: column close has NaN or inf (row 51) (skipped)"
    ]
    assert "failed: 1 of 3 symbols (BAD)" in err and "Traceback" not in err
    rows = table(out)
    assert list(rows) == ["AAPL", "BAD", "GOOG"]  # the symbols' order
    for symbol in ("AAPL", "GOOG"):
        assert rows[symbol][1] == f"fake:{symbol}:v5-t5-h1:trading"
        assert rows[symbol][2] == "2/2" and rows[symbol][3].startswith("trial ")
        assert rows[symbol][-1] == "ok"
        assert (workdir / "store" / "fake" / f"{symbol}.json").is_file()
    reason = f"{data / 'BAD.csv'}: column close has NaN or inf (row 51)"
    assert rows["BAD"][-1] in (f"failed: {reason}", f"failed: {reason[:117]}...")
    assert not (workdir / "store" / "fake" / "BAD.json").exists()
    names = optuna.get_all_study_names("sqlite:///studies.db")
    assert sorted(names) == ["fake:AAPL:v5-t5-h1:trading", "fake:GOOG:v5-t5-h1:trading"]


def test_an_all_good_sweep_exits_0_with_no_bar_off_a_terminal(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = good_data(workdir, "AAPL", "GOOG")
    assert sweep(data, "--symbols", "GOOG", "AAPL") == 0  # progress asked, stderr no TTY
    out, err = capsys.readouterr()
    assert errors(err) == [] and "symbols:" not in err and "%|" not in err
    rows = table(out)
    assert list(rows) == ["GOOG", "AAPL"]  # as named
    assert [row[-1] for row in rows.values()] == ["ok", "ok"]


def test_every_kind_of_bad_symbol_is_one_line_and_the_rest_resume(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = good_data(workdir, "AAPL", "GOOG")
    assert sweep(data, "--all", "--no-progress") == 0
    frame = pd.read_csv(data / "GOOG.csv")  # a past bar edited: GOOG's study refuses to resume
    frame.loc[100, "close"] *= 1.01
    frame.to_csv(data / "GOOG.csv", index=False)
    (data / "EMPTY.csv").write_text("")
    frame.iloc[:60].to_csv(data / "SHORT.csv", index=False)
    (data / "GARBLED.csv").write_bytes(b"\xff\xfe\x00\x81timestamp,close\n\x00\x9f")
    (data / "RAGGED.csv").write_text("timestamp,open,high,low,close\n2020-01-01,1,2,3,4,5,6\n")
    capsys.readouterr()
    assert sweep(data, "--all", "--no-progress") == 2
    out, err = capsys.readouterr()
    lines = {line.split(":")[1].strip(): line for line in errors(err)}
    assert sorted(lines) == ["EMPTY", "GARBLED", "GOOG", "RAGGED", "SHORT"], err
    assert "not a readable CSV" in lines["EMPTY"] and "not a readable CSV" in lines["GARBLED"]
    assert "too few rows" in lines["SHORT"]
    assert "refusing to resume study fake:GOOG:v5-t5-h1:trading" in lines["GOOG"]
    assert "optuna delete-study" in lines["GOOG"]
    assert all(line.endswith("(skipped)") for line in lines.values())
    assert "unexpected" not in err and "Traceback" not in err
    rows = table(out)
    assert rows["AAPL"][-1] == "ok" and rows["AAPL"][2] == "2/2"  # resumed: already done
    assert rows["GOOG"][1] == "fake:GOOG:v5-t5-h1:trading"
    assert rows["GOOG"][-1].startswith("failed: refusing to resume study")
    assert rows["GOOG"][-1].endswith("...")  # the table keeps the reason short; the line has all
    assert all(rows[s][-1].startswith("failed: ") for s in lines)


def test_errors_of_the_whole_run_still_stop_it_at_once(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = good_data(workdir, "AAPL", "GOOG")
    assert sweep(data, "--all", "--no-progress", "--storage", "mysql://x@y/z") == 2
    err = capsys.readouterr().err
    assert len(errors(err)) == 1 and "not supported" in err and "failed:" not in err
    assert not (workdir / "studies.db").exists() and not (workdir / "store").exists()


def test_a_sweep_whose_every_csv_is_bad_writes_nothing(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = workdir / "data"
    data.mkdir()
    (data / "A.csv").write_text("")
    (data / "B.csv").write_text("timestamp,close\n")
    assert sweep(data, "--all", "--no-progress") == 2
    out, err = capsys.readouterr()
    assert [line.split(":")[1] for line in errors(err)] == [" A", " B"]
    assert [row[-1][:7] for row in table(out).values()] == ["failed:", "failed:"]
    assert not (workdir / "studies.db").exists() and not (workdir / "store").exists()


def test_the_bar_over_symbols_counts_the_failed(capsys: pytest.CaptureFixture[str]) -> None:
    failed = [Outcome("A", failure="bad"), Outcome("B", failure="worse")]
    plan = Plan(["A", "B"], [], failed, sweep=True)
    unused = Steps(*(lambda *_: pytest.fail("nothing to run"),) * 3)
    assert run_sweep(plan, [], unused, None, 2, progress=True) == failed
    err = capsys.readouterr().err
    assert "symbols: 100%" in err and "2/2" in err and "0 ok, 2 failed" in err


@pytest.mark.parametrize(
    "error, the_runs",
    [
        (DataError("x.csv: no rows"), False),
        (StudyError("refusing to resume study s: the data changed"), False),
        (RuntimeError("a bug in one symbol's scoring"), False),
        (StudyError("database error: password authentication failed"), True),
        (StorageError("the study database studies.db was deleted while this worker ran"), True),
        (DatabaseUnreachableError("lost the database for over 60 s"), True),
        (OperationalError("SELECT 1", {}, Exception("connection refused")), True),
    ],
)
def test_only_the_runs_own_errors_stop_a_sweep(error: Exception, the_runs: bool) -> None:
    assert concerns_the_run(error) is the_runs


#: the other worker: it starts its sweep once this test's own is about to start, so they overlap
WORKER = """
import sys, time
from pathlib import Path
import tests.fake_backend, optimise.commands, matplotlib.pyplot
from optimise.cli import main
gate = Path(sys.argv[1]); (gate / "worker").touch()
deadline = time.monotonic() + float(sys.argv[2])
while not (gate / "test").exists() and time.monotonic() < deadline:
    time.sleep(0.01)
sys.exit(main(sys.argv[3:]))
"""


@pytest.mark.postgres
def test_two_workers_on_postgresql_share_a_sweep_within_every_budget(
    workdir: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """This test's process is one worker (in-process, to spare a second start-up), a child
    process the other; both run the same ``launch --all``."""
    symbols = ["AAPL", "GOOG"]
    data = good_data(workdir, *symbols)
    gate = workdir / "gate"
    gate.mkdir()
    n = 4
    argv = [
        "launch", "--model", "fake", "--all", "--data-dir", data, "--storage", postgres_url,
        "--store", workdir / "store", "--no-progress", *FAST, "--n-trials", n,
    ]  # fmt: skip
    monkeypatch.setenv("FAKE_TRIAL_SLEEP", "0.03")
    with (workdir / "worker.log").open("w+") as log:
        worker = subprocess.Popen(
            [sys.executable, "-c", WORKER, gate, str(CEILING_S), *map(str, argv)],
            env=cli_env(FAKE_TRIAL_SLEEP="0.03"), cwd=REPO, stdout=log,
            stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            wait_for(lambda: (gate / "worker").exists() or worker.poll() is not None)
            (gate / "test").touch()
            assert run_cli(*argv) == 0
            worker.wait(timeout=CEILING_S)
        finally:
            worker.kill()
        log.seek(0)
        outputs = [capsys.readouterr().out, log.read()]
    assert worker.returncode == 0, outputs[1]
    for output in outputs:
        assert [row[-1] for row in table(output).values()] == ["ok"] * 2, output
    owners = set()
    for symbol in symbols:
        study = optuna.load_study(
            study_name=f"fake:{symbol}:v5-t5-h1:trading", storage=postgres_url
        )
        states = [t.state for t in study.trials]
        assert states.count(TrialState.COMPLETE) == n, (symbol, states)
        assert TrialState.RUNNING not in states and TrialState.WAITING not in states
        assert len(study.user_attrs["test_scores"]) == 1  # finalised once, by one of them
        owners |= {t.user_attrs[WORKER_ATTR] for t in study.trials}
        assert (workdir / "store" / "fake" / f"{symbol}.json").is_file()
    assert len(owners) == 2, owners  # both took trials


def wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + CEILING_S
    while not condition():
        assert time.monotonic() < deadline, "the worker never got ready"
        time.sleep(0.01)
