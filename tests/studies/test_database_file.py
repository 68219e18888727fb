"""Issue 21, item 4: a SQLite study file deleted, replaced or truncated under a running worker
stops it with one ``error:`` line (exit code 2) at its next trial take, instead of finishing the
study into a file nobody reads and exiting 0; ``status`` on a file that is not, or no longer, a
SQLite database answers with one line (it was ``unexpected DatabaseError``, exit code 1)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import optuna
import pytest

from tests.conftest import REPO, launch_fake, run_cli

DATA = REPO / "trainingdata"
MESSAGES = {
    "deleted": "was deleted while this worker ran",
    "replaced": "was replaced by another file while this worker ran",
    "truncated": "was truncated (",
}


def destroy(path: Path, fault: str) -> None:
    if fault == "deleted":
        path.unlink()
    elif fault == "replaced":  # a restored backup, a second launch's new file: another inode
        copy = path.with_name("copy.db")
        shutil.copyfile(path, copy)
        os.replace(copy, path)
    else:
        os.truncate(path, 0)


def error_lines(err: str) -> list[str]:
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert errors == err.strip().splitlines()[-1:], err  # one, and the last thing printed
    assert "unexpected" not in err and "Traceback" not in err, err
    return errors


@pytest.mark.parametrize("fault", sorted(MESSAGES))
def test_a_worker_stops_when_its_sqlite_file_is_destroyed_mid_study(
    fault: str, workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import studies.worker

    objective, ran = studies.worker.objective, []

    def destroying(trial: optuna.Trial, ctx: object) -> float:
        ran.append(trial.number)
        if len(ran) == 2:
            destroy(workdir / "studies.db", fault)
        return objective(trial, ctx)

    monkeypatch.setattr(studies.worker, "objective", destroying)
    assert launch_fake(DATA, 8, "--confirm-draws", 2) == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert line.startswith(f"error: the study database {workdir / 'studies.db'} "), line
    assert MESSAGES[fault] in line and "run the command again" in line
    assert len(ran) == 2  # stopped at the next take, not after 8 trials
    assert not (workdir / "store" / "fake" / "AAPL.json").exists()  # nothing exported


def test_status_on_a_file_that_is_not_a_sqlite_database_is_one_line(
    workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    (workdir / "studies.db").write_bytes(b"timestamp,open,high,low,close\n" * 200)
    assert run_cli("status") == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert line == (
        f"error: {workdir / 'studies.db'} is not a SQLite database (it does not start with "
        "SQLite's header); pass --storage with the study database, or move the file away to "
        "start a new one"
    )


def test_status_on_a_truncated_sqlite_database_is_one_line(
    workdir: Path, capsys: pytest.CaptureFixture
) -> None:
    optuna.create_study(study_name="s", storage="sqlite:///studies.db")  # every Optuna table
    os.truncate(workdir / "studies.db", 8192)  # two pages of many: the schema is cut short
    assert run_cli("status") == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert line == (
        "error: cannot open storage sqlite:///studies.db: DatabaseError: database disk image "
        "is malformed"
    )
