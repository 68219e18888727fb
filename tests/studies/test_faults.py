"""The fault suite: rounds of the faults an operator meets in the first week, on PostgreSQL.

Each round: workers whose connections are dropped (twice, once with the database refusing new
connections for seconds); a finaliser SIGKILLed before its claim commits, after it commits and
after the result is stored but before it is published; a study deleted and created again with
changed data. Every round checks exactly N COMPLETE trials, nothing RUNNING or WAITING, one
test scoring per finalisation round, a store record of the live study, and every worker's exit
code 0. ``FAULT_ROUNDS`` (default 2) sets the number of rounds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import psycopg
import pytest
from optuna.trial import TrialState

from storage.database import Database
from tests.conftest import PG_ADMIN, REPO, cli_command, cli_env, run_cli
from tests.processes import Child
from tests.studies.test_budget import assert_quiet_outages
from tests.studies.test_crash_recovery import launch_args, wait_for

NAME = "fake:MSFT:v20-t20-h1:trading"
ROUNDS = int(os.environ.get("FAULT_ROUNDS", "2"))
DATA = REPO / "trainingdata"


def args_for(url: str, workdir: Path, n: int, data: Path = DATA) -> list[str]:
    args = launch_args(data, url, workdir, n)
    return [("MSFT" if a == "AAPL" else a) for a in args]


def complete_count(url: str) -> int:
    try:
        study = optuna.load_study(study_name=NAME, storage=url)
    except KeyError:
        return 0
    return len(study.get_trials(states=(TrialState.COMPLETE,)))


def drop_connections(database: str, refuse_s: float = 0.0) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        if refuse_s:
            admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (database,),
        )
        if refuse_s:
            time.sleep(refuse_s)
            admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')


def check_round(url: str, n: int, workdir: Path) -> optuna.Study:
    study = optuna.load_study(study_name=NAME, storage=Database.open(url).optuna)
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == n
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))
    scores = study.user_attrs["test_scores"]
    assert len({s["round"] for s in scores}) == len(scores) >= 1  # one scoring per round
    record = json.loads((workdir / "store" / "fake" / "MSFT.json").read_text())
    assert record["metadata"]["study_uid"] == study.user_attrs["study_uid"]
    assert record["metadata"]["trial_number"] == study.user_attrs["winner"]["trial_number"]
    assert scores[-1]["price_mae"] == record["test"]["price_mae"]
    return study


def killed_finaliser(url: str, workdir: Path, n: int, moment: str, draws: int) -> int:
    """Run a launch whose finaliser is SIGKILLed at ``moment``; return its exit code.
    ``draws`` differs per call so that each launch has a new finalisation round to kill."""
    script = f"""
import os, signal, sys
import tests.fake_backend  # registers the fake model
from storage.ledger import Ledger
from optimise.cli import main
moment = {moment!r}
claim, complete = Ledger.claim, Ledger.complete
def die():
    os.kill(os.getpid(), signal.SIGKILL)
def claim_then_die(self, *a, **k):
    if moment == "before-claim":
        die()
    result = claim(self, *a, **k)
    if moment == "after-claim" and result.state == "won":
        die()
    return result
def complete_then_die(self, *a, **k):
    done = complete(self, *a, **k)
    if moment == "after-complete":
        die()
    return done
Ledger.claim, Ledger.complete = claim_then_die, complete_then_die
sys.exit(main({[*args_for(url, workdir, n), "--confirm-draws", str(draws)]!r}))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], env=cli_env(), cwd=REPO, capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip
    return result.returncode


@pytest.mark.postgres
def test_fault_rounds(postgres_url: str, workdir: Path) -> None:
    database = postgres_url.rsplit("/", 1)[1]
    n = 0
    for round_number in range(ROUNDS):
        # 1. three workers; connections dropped twice, once refused for 3 s
        n += 12
        workers = [
            Child(
                cli_command(*args_for(postgres_url, workdir, n)),
                env=cli_env(FAKE_TRIAL_SLEEP="0.1"),
            )
            for _ in range(3)
        ]
        wait_for(lambda: complete_count(postgres_url) >= n - 9, *workers)  # noqa: B023
        drop_connections(database)
        wait_for(lambda: complete_count(postgres_url) >= n - 5, *workers)  # noqa: B023
        drop_connections(database, refuse_s=3.0)
        for worker in workers:
            code, out = worker.finish()
            assert code == 0, f"round {round_number}: {out}"
            assert_quiet_outages(out)  # one line per outage and one when it ends, no more
        check_round(postgres_url, n, workdir)

        # 2. finalisers killed at three moments; the next export repairs at once
        for draws, moment in enumerate(("before-claim", "after-claim", "after-complete"), 3):
            n += 2
            draws += 10 * round_number
            assert killed_finaliser(postgres_url, workdir, n, moment, draws) == -9
            started = time.monotonic()
            export = subprocess.run(
                cli_command("export", "--model", "fake", "--symbols", "MSFT", "--data-dir",
                            DATA, "--storage", postgres_url, "--store", workdir / "store",
                            "--confirm-draws", draws),
                env=cli_env(), capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert export.returncode == 0, export.stderr
            assert time.monotonic() - started < 60, "a dead finaliser stalled the export"
            check_round(postgres_url, n, workdir)

    # 3. delete the study and create it again with changed data: nothing of the old one leaks
    old = json.loads((workdir / "store" / "fake" / "MSFT.json").read_text())
    optuna.delete_study(study_name=NAME, storage=Database.open(postgres_url).optuna)
    changed = workdir / "changed"
    changed.mkdir()
    lines = (DATA / "MSFT.csv").read_text().splitlines()
    (changed / "MSFT.csv").write_text("\n".join(lines[:-3]) + "\n")
    result = subprocess.run(
        cli_command(*args_for(postgres_url, workdir, 6, changed)), env=cli_env(),
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    study = check_round(postgres_url, 6, workdir)
    new = json.loads((workdir / "store" / "fake" / "MSFT.json").read_text())
    assert new["metadata"]["data_fingerprint"] != old["metadata"]["data_fingerprint"]
    assert len(study.user_attrs["test_scores"]) == 1


@pytest.mark.postgres
def test_a_late_finaliser_leaves_the_newer_round_published(postgres_url: str, workdir: Path):
    """Issue 21, item 1: a 10-trial launch's finaliser stores its round, then stops itself
    (SIGSTOP, at that exact moment); a 20-trial launch finalises and publishes its newer round;
    resumed (SIGCONT), the late finaliser exits 0, says its round was not published, and the
    store files and the study's ``winner`` are still the newer round's."""
    quick = ["--confirm-draws", "2", "--no-default-comparison"]
    script = f"""
import os, signal, sys
import tests.fake_backend  # registers the fake model
from storage.ledger import Ledger
from optimise.cli import main
complete = Ledger.complete
def complete_then_stop(self, *a, **k):
    done = complete(self, *a, **k)
    print("finaliser stalled", flush=True)
    os.kill(os.getpid(), signal.SIGSTOP)
    return done
Ledger.complete = complete_then_stop
sys.exit(main({[*args_for(postgres_url, workdir, 10), *quick]!r}))
"""
    store = workdir / "store"
    files = [store / "fake" / "MSFT.json", store / "best" / "MSFT.json"]
    with Child([sys.executable, "-c", script], env=cli_env(), cwd=REPO) as late:
        late.wait_for_line("finaliser stalled")
        assert run_cli(*args_for(postgres_url, workdir, 20), *quick) == 0  # in this process
        files += sorted((store / "fake" / "studies").glob("*.json"))  # the study's own record
        published = {p: p.read_bytes() for p in files}
        winner = optuna.load_study(study_name=NAME, storage=postgres_url).user_attrs["winner"]
        os.kill(late.pid, signal.SIGCONT)
        code, out = late.finish()
    assert code == 0, out
    assert "(trial" in out and "was not published: a newer round (chosen from 20" in out
    assert {p: p.read_bytes() for p in files} == published
    study = check_round(postgres_url, 20, workdir)
    assert study.user_attrs["winner"] == winner
    assert json.loads(files[0].read_text())["metadata"]["complete_trials"] == 20
    assert len(study.user_attrs["test_scores"]) == 2  # each round scored once
