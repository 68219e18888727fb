"""Issue 21, item 5: ``launch`` takes the data folder, checkpoint and tokenizer an existing study
recorded, as ``export`` and ``forecast`` do and as its help says, and says so in one line.
Before, a relaunch without ``--data-dir`` looked in ``trainingdata/`` (and without
``--checkpoint`` was refused: "the checkpoint differs")."""

from __future__ import annotations

import shutil
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from optimise.parser import build_parser
from tests.conftest import REPO, run_cli

NAME = "fake:AAPL:v20-t20-h1:trading"
QUICK = ["--no-progress", "--confirm-draws", 2, "--confirm-candidates", 2]


def test_a_relaunch_takes_the_folders_the_study_recorded_and_says_so(
    workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    data = workdir / "bars"  # not ./trainingdata, the default
    data.mkdir()
    shutil.copy(REPO / "trainingdata" / "AAPL.csv", data)
    launch = ["launch", "--model", "fake", "--symbols", "AAPL", *QUICK]
    assert run_cli(*launch, "--n-trials", 2, "--data-dir", data, "--checkpoint", "fake-ck") == 0
    capsys.readouterr()

    assert run_cli(*launch, "--n-trials", 3) == 0
    err = capsys.readouterr().err
    taken = [line for line in err.splitlines() if "recorded at launch" in line]
    assert taken == [
        f"note: --checkpoint fake-ck, --data-dir {data} as study {NAME} recorded at launch "
        "(pass them to use others)"
    ], err
    study = optuna.load_study(study_name=NAME, storage="sqlite:///studies.db")
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 3

    # given flags win, and nothing is said about them
    assert run_cli(*launch, "--n-trials", 3, "--data-dir", data, "--checkpoint", "fake-ck") == 0
    assert "recorded at launch" not in capsys.readouterr().err


def test_launch_help_says_the_folders_come_from_the_study(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["launch", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: the folder the study recorded at launch, else trainingdata)" in text
    assert "(default: the study's, else the published NeoQuasar/Kronos-base (Kronos), " in text
    assert "Datadog/Toto-Open-Base-1.0 (Toto)" in text
