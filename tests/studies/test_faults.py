"""The fault suite: rounds of the faults an operator meets in the first week, on PostgreSQL.

Each round: workers whose connections are dropped (twice, once with the database refusing new
connections for seconds); a finaliser SIGKILLed before its claim commits, after it commits and
after the result is stored but before it is published; a study deleted and created again with
changed data. Every round checks exactly N COMPLETE trials, nothing RUNNING or WAITING, one
test scoring per finalisation round, a store record of the live study, and every worker's exit
code 0. ``FAULT_ROUNDS`` (default 2) sets the number of rounds.

Two models take turns, one per bar (:data:`MODELS`): the test double and Chronos-2 on its tiny
random checkpoint (a real model, deterministic: its confirmation is one draw). Round ``r``'s
workers (bar 1) run ``MODELS[(r + 1) % 2]`` and its finalisers (bar 2) ``MODELS[r % 2]``, so
with two rounds each bar runs each model once and each model's study is resumed by the other
bar; the deleted study (bar 3) and the late finaliser are Chronos-2's.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import optuna
import psycopg
import pytest
from optuna.trial import TrialState

from objectives.registry import spec
from storage.database import Database
from tests.conftest import PG_ADMIN, REPO, cli_command, cli_env, run_cli
from tests.processes import Child
from tests.studies.test_budget import assert_quiet_outages
from tests.studies.test_crash_recovery import launch_args, wait_for

ROUNDS = int(os.environ.get("FAULT_ROUNDS", "2"))
DATA = REPO / "trainingdata"
#: the models that take turns in the bars (module docstring)
MODELS = ("fake", "chronos2")
#: seconds a paced worker holds each trial, so that the connection drops land while trials run
#: (the test double is paced by its own FAKE_TRIAL_SLEEP)
PACE_S = 0.1
PACED = """
import sys, time
import tests.fake_backend  # registers the fake model
import studies.worker as worker
from optimise.cli import main
scored = worker.objective
def paced(trial, ctx):
    time.sleep({pace})
    return scored(trial, ctx)
worker.objective = paced
sys.exit(main({args!r}))
"""


@dataclass(frozen=True)
class Model:
    """A model as the bars run it: its study of MSFT and its launch arguments."""

    name: str
    checkpoint: Path | None = None
    #: validation and test windows (a real model's every window costs a forward pass)
    windows: tuple[int, int] = (20, 20)

    @property
    def study(self) -> str:
        horizon = spec(self.name).default_horizon("trading")
        val, test = self.windows
        return f"{self.name}:MSFT:v{val}-t{test}-h{horizon}:trading"

    def args(self, url: str, workdir: Path, n: int, data: Path = DATA) -> list[str]:
        args = [
            "MSFT" if a == "AAPL" else self.name if a == "fake" else a
            for a in launch_args(data, url, workdir, n)
        ]
        if self.windows != (20, 20):
            args += ["--val-window", str(self.windows[0]), "--test-window", str(self.windows[1])]
        return args + ([] if self.checkpoint is None else ["--checkpoint", str(self.checkpoint)])

    def worker(self, url: str, workdir: Path, n: int) -> Child:
        """A launch whose trials are slowed (the test double's own way, else paced)."""
        if self.name == "fake":
            command = cli_command(*self.args(url, workdir, n))
            return Child(command, env=cli_env(FAKE_TRIAL_SLEEP="0.1"))
        script = PACED.format(pace=PACE_S, args=self.args(url, workdir, n))
        return Child([sys.executable, "-c", script], env=cli_env(), cwd=REPO)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Model]:
    """The test double, and Chronos-2 with a tiny random checkpoint made once."""
    checkpoint = tmp_path_factory.mktemp("faults") / "chronos2-tiny"
    assert run_cli("checkpoint", "init", "--arch", "chronos2", "--preset", "tiny", checkpoint) == 0
    return {"fake": Model("fake"), "chronos2": Model("chronos2", checkpoint, (8, 4))}


def complete_count(url: str, model: Model) -> int:
    try:
        study = optuna.load_study(study_name=model.study, storage=url)
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


def check_round(url: str, n: int, workdir: Path, model: Model) -> optuna.Study:
    study = optuna.load_study(study_name=model.study, storage=Database.open(url).optuna)
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == n
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))
    scores = study.user_attrs["test_scores"]
    assert len({s["round"] for s in scores}) == len(scores) >= 1  # one scoring per round
    record = json.loads((workdir / "store" / model.name / "MSFT.json").read_text())
    assert record["metadata"]["study_uid"] == study.user_attrs["study_uid"]
    assert record["metadata"]["trial_number"] == study.user_attrs["winner"]["trial_number"]
    assert scores[-1]["price_mae"] == record["test"]["price_mae"]
    return study


def killed_finaliser(url: str, workdir: Path, n: int, moment: str, draws: int, model: Model) -> int:
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
sys.exit(main({[*model.args(url, workdir, n), "--confirm-draws", str(draws)]!r}))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], env=cli_env(), cwd=REPO, capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip
    return result.returncode


@pytest.mark.postgres
def test_fault_rounds(postgres_url: str, workdir: Path, models: dict[str, Model]) -> None:
    database = postgres_url.rsplit("/", 1)[1]
    n = dict.fromkeys(models, 0)  # each model's study's trials so far
    for round_number in range(ROUNDS):
        # 1. three workers; connections dropped twice, once refused for 3 s
        model = models[MODELS[(round_number + 1) % 2]]
        n[model.name] += 12
        total = n[model.name]
        workers = [model.worker(postgres_url, workdir, total) for _ in range(3)]
        wait_for(lambda: complete_count(postgres_url, model) >= total - 9, *workers)  # noqa: B023
        drop_connections(database)
        wait_for(lambda: complete_count(postgres_url, model) >= total - 5, *workers)  # noqa: B023
        drop_connections(database, refuse_s=3.0)
        for worker in workers:
            code, out = worker.finish()
            assert code == 0, f"round {round_number}, {model.name}: {out}"
            assert_quiet_outages(out)  # one line per outage and one when it ends, no more
        check_round(postgres_url, total, workdir, model)

        # 2. finalisers killed at three moments; the next export repairs at once
        model = models[MODELS[round_number % 2]]
        for draws, moment in enumerate(("before-claim", "after-claim", "after-complete"), 3):
            n[model.name] += 2
            draws += 10 * round_number
            code = killed_finaliser(postgres_url, workdir, n[model.name], moment, draws, model)
            assert code == -9, f"round {round_number}, {model.name}, {moment}"
            started = time.monotonic()
            windows = ["--val-window", str(model.windows[0]), "--test-window",
                       str(model.windows[1])]  # fmt: skip
            export = subprocess.run(
                cli_command("export", "--model", model.name, "--symbols", "MSFT", "--data-dir",
                            DATA, "--storage", postgres_url, "--store", workdir / "store",
                            "--confirm-draws", draws, *windows),
                env=cli_env(), capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert export.returncode == 0, export.stderr
            assert time.monotonic() - started < 60, "a dead finaliser stalled the export"
            check_round(postgres_url, n[model.name], workdir, model)

    # 3. delete the study and create it again with changed data: nothing of the old one leaks
    model = models["chronos2"]
    old = json.loads((workdir / "store" / model.name / "MSFT.json").read_text())
    optuna.delete_study(study_name=model.study, storage=Database.open(postgres_url).optuna)
    changed = workdir / "changed"
    changed.mkdir()
    lines = (DATA / "MSFT.csv").read_text().splitlines()
    (changed / "MSFT.csv").write_text("\n".join(lines[:-3]) + "\n")
    result = subprocess.run(
        cli_command(*model.args(postgres_url, workdir, 6, changed)), env=cli_env(),
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    study = check_round(postgres_url, 6, workdir, model)
    new = json.loads((workdir / "store" / model.name / "MSFT.json").read_text())
    assert new["metadata"]["data_fingerprint"] != old["metadata"]["data_fingerprint"]
    assert len(study.user_attrs["test_scores"]) == 1


@pytest.mark.postgres
def test_a_late_finaliser_leaves_the_newer_round_published(
    postgres_url: str, workdir: Path, models: dict[str, Model]
) -> None:
    """Issue 21, item 1: a 10-trial launch's finaliser stores its round, then stops itself
    (SIGSTOP, at that exact moment); a 20-trial launch finalises and publishes its newer round;
    resumed (SIGCONT), the late finaliser exits 0, says its round was not published, and the
    store files and the study's ``winner`` are still the newer round's. Chronos-2's study."""
    model = models["chronos2"]
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
sys.exit(main({[*model.args(postgres_url, workdir, 10), *quick]!r}))
"""
    store = workdir / "store"
    files = [store / model.name / "MSFT.json", store / "best" / "MSFT.json"]
    with Child([sys.executable, "-c", script], env=cli_env(), cwd=REPO) as late:
        late.wait_for_line("finaliser stalled")
        assert run_cli(*model.args(postgres_url, workdir, 20), *quick) == 0  # in this process
        files += sorted((store / model.name / "studies").glob("*.json"))  # its own record
        published = {p: p.read_bytes() for p in files}
        study = optuna.load_study(study_name=model.study, storage=postgres_url)
        winner = study.user_attrs["winner"]
        os.kill(late.pid, signal.SIGCONT)
        code, out = late.finish()
    assert code == 0, out
    assert "(trial" in out and "was not published: a newer round (chosen from 20" in out
    assert {p: p.read_bytes() for p in files} == published
    study = check_round(postgres_url, 20, workdir, model)
    assert study.user_attrs["winner"] == winner
    assert json.loads(files[0].read_text())["metadata"]["complete_trials"] == 20
    assert len(study.user_attrs["test_scores"]) == 2  # each round scored once
