"""User mistakes on the command line: each exits 2 with one ``error:`` line that says what to
do, nothing is written, and "unexpected" is kept for real bugs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli

DATA = REPO / "trainingdata"
KRONOS = [
    "--param=temperature=0.5", "--param=top_p=1.0", "--param=top_k=3",
    "--param=sample_count=8", "--param=max_context=64", "--param=clip=2",
]  # fmt: skip
LAUNCH = ["launch", "--model", "fake", "--symbols", "AAPL", "--data-dir", DATA, "--n-trials", 2]
FORECAST = ["forecast", "--model", "kronos", "--symbol", "AAPL", "--data-dir", DATA]

MISTAKES = {
    "top_k not a number": ([*FORECAST, *KRONOS, "--param=top_k=abc"], "top_k must be a number"),
    "top_p above 1": ([*FORECAST, *KRONOS, "--param=top_p=2"], "top_p must be in (0, 1]"),
    "negative top_k": ([*FORECAST, *KRONOS, "--param=top_k=-1"], "top_k must be 0 (off) or more"),
    "fractional sample_count": (
        [*FORECAST, *KRONOS, "--param=sample_count=2.5"],
        "sample_count must be a finite int",
    ),
    "unknown aggregate": (
        [
            "forecast",
            "--model",
            "toto",
            "--symbol",
            "AAPL",
            "--data-dir",
            DATA,
            "--param=num_samples=64",
            "--param=aggregate=trimmed_mean_0.5",
        ],
        "trimmed",
    ),
    "param without =": ([*FORECAST, "--param", "temperature"], "is not NAME=VALUE"),
    "heartbeat 0": ([*LAUNCH, "--heartbeat", 0], "--heartbeat must be at least 1"),
    "grace below heartbeat": ([*LAUNCH, "--grace", -1], "--grace (-1 s) must exceed"),
    "negative timeout": ([*LAUNCH, "--timeout", -5], "--timeout must be a positive"),
    "zero trials": ([*LAUNCH[:-1], 0], "--n-trials must be at least 1"),
    "one confirmation draw": (
        [*LAUNCH, "--confirm-draws", 1],
        "--confirm-draws must be at least 2",
    ),
    "store is a file": ([*LAUNCH, "--store", "afile"], "is a file, not a folder"),
    "data dir is a file": (
        ["launch", "--model", "fake", "--all", "--data-dir", "afile"],
        "is a file, not a folder",
    ),
    "unknown symbol": ([*LAUNCH[:4], "NOPE", *LAUNCH[5:]], "no data for NOPE"),
    "bad storage URL": ([*LAUNCH, "--storage", "not a url"], "is not a database URL"),
    "password with @": (
        [*LAUNCH, "--storage", "postgresql://u:p@ss@h/db"],
        "percent-encode it as %40",
    ),
    "status without a database": (
        ["status", "--storage", "sqlite:///none.db"],
        "no study database",
    ),
    "export of a missing study": (
        ["export", "--model", "fake", "--symbols", "AAPL", "--data-dir", DATA],
        "no study database",
    ),
    "port out of range": (["dashboard", "--port", 70000], "is not a TCP port"),
}


@pytest.mark.parametrize("case", list(MISTAKES))
def test_a_user_mistake_is_one_line_and_exit_code_2(
    case: str, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args, expected = MISTAKES[case]
    (workdir / "afile").write_text("")
    if case in ("port out of range",):
        import optuna

        optuna.create_study(study_name="x", storage="sqlite:///studies.db")
    before = sorted(p.name for p in workdir.iterdir())
    assert run_cli(*args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert expected in err, err
    assert "unexpected" not in err
    assert sorted(p.name for p in workdir.iterdir()) == before  # nothing written
