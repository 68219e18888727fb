"""A finaliser that comes back late never undoes a newer round's work (issue 21, items 1, 8).

Each race is made deterministic by a hook: the late finaliser's own call (``confirm`` or
``Ledger.complete``) runs the other finaliser to its end before it returns, standing in for a
finaliser paused by SIGSTOP or a slow host. The model is the test double; every test runs on
SQLite and, marked ``postgres``, on PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pytest
from sqlalchemy import update

import studies.finalise as finalise_module
from objectives.bars import load_bars
from objectives.evaluator import load_backend
from objectives.tasks import TRADING
from objectives.windows import WindowSpec
from storage.database import Database
from storage.ledger import Ledger, finalisation
from studies.context import StudyContext
from studies.finalise import Finalised, FinaliseSettings, finalise
from studies.open import open_study
from studies.worker import WorkerSettings, run_study

#: the 10-trial round's winner is trial 0, the 12-trial round's trial 11 (fake model,
#: trading task, study seed 0, 2 confirmation draws)
OLD, NEW = 10, 12
#: a lease the holder's keeper never renews during a test (it renews every quarter), so that
#: only the test expires it
LONG_LEASE = FinaliseSettings(draws=2, compare_default=False, lease_s=3600.0)
QUICK = FinaliseSettings(draws=2, compare_default=False)


@pytest.fixture
def url(workdir: Path) -> str:
    return f"sqlite:///{workdir / 'studies.db'}"


@dataclass
class Setup:
    url: str
    store: Path
    ctx: StudyContext
    study: optuna.Study
    ledger: Ledger
    test_scorings: list[int]  # one entry per evaluation of the winner on the test window
    _other: Database | None = None

    def other(self) -> tuple[optuna.Study, Ledger]:
        """The study and ledger as another process sees them (a handle of its own)."""
        if self._other is None:
            self._other = Database.open(self.url)
        study = optuna.load_study(study_name=self.study.study_name, storage=self._other.optuna)
        return study, self._other.ledger

    def run_to(self, n_trials: int) -> None:
        study, ledger = self.other()
        run_study(study, self.ctx, ledger, n_trials, WorkerSettings(progress=False))

    def finalise_other(self, settings: FinaliseSettings = QUICK) -> Finalised:
        study, ledger = self.other()
        return finalise(study, self.ctx, ledger, self.store, self.url, settings)

    def files(self) -> dict[str, str]:
        """The live record, the study's own record and ``best/`` as text, and the ``winner``
        attr as JSON (text compares NaN equal)."""
        store = self.store
        (study_file,) = (store / "fake" / "studies").glob("*.json")
        return {
            "live": (store / "fake" / "AAPL.json").read_text(),
            "study": study_file.read_text(),
            "best": (store / "best" / "AAPL.json").read_text(),
            "winner": json.dumps(self.other()[0].user_attrs["winner"], sort_keys=True),
        }


def make_setup(
    url: str, workdir: Path, sample_data: Path, monkeypatch: pytest.MonkeyPatch, n_trials: int
) -> Setup:
    """A study of ``n_trials`` complete trials; the test-window scorings counted from now."""
    ctx = StudyContext(load_backend("fake"), load_bars(sample_data, "AAPL"), WindowSpec(),
                       task=TRADING)  # fmt: skip
    db = Database.open(url)
    study = open_study(db.optuna, ctx)
    run_study(study, ctx, db.ledger, n_trials, WorkerSettings(progress=False))
    scorings: list[int] = []
    evaluate = finalise_module.evaluate

    def counting(evaluator: Any, bars: Any, targets: Any, *args: Any, **kwargs: Any) -> Any:
        if targets is ctx.windows.test:
            scorings.append(1)
        return evaluate(evaluator, bars, targets, *args, **kwargs)

    monkeypatch.setattr(finalise_module, "evaluate", counting)
    return Setup(url, workdir / "store", ctx, study, db.ledger, scorings)


@pytest.fixture
def setup(url: str, workdir: Path, sample_data: Path, monkeypatch: pytest.MonkeyPatch) -> Setup:
    """A study of :data:`OLD` trials, for the races between rounds."""
    return make_setup(url, workdir, sample_data, monkeypatch, OLD)


@pytest.fixture
def small(url: str, workdir: Path, sample_data: Path, monkeypatch: pytest.MonkeyPatch) -> Setup:
    """A study of 3 trials."""
    return make_setup(url, workdir, sample_data, monkeypatch, 3)


def same(a: Finalised, b: Finalised) -> bool:
    """Whether two calls returned the same record (as JSON: NaN equals NaN)."""
    return json.dumps(a.record.to_json()) == json.dumps(b.record.to_json())


def once(action: Callable[[], None]) -> Callable[[], None]:
    """``action`` the first time only (the hooked call is also made by the other finaliser)."""
    done: list[bool] = []

    def run() -> None:
        if not done:
            done.append(True)
            action()

    return run


def hook_complete(monkeypatch: pytest.MonkeyPatch, before: Callable[[], None] | None = None,
                  after: Callable[[], None] | None = None) -> None:  # fmt: skip
    real = Ledger.complete

    def complete(self: Ledger, *args: Any, **kwargs: Any) -> bool:
        if before is not None:
            before()
        done = real(self, *args, **kwargs)
        if after is not None:
            after()
        return done

    monkeypatch.setattr(Ledger, "complete", complete)


def hook_confirm(monkeypatch: pytest.MonkeyPatch, before: Callable[[], None]) -> None:
    real = finalise_module.confirm

    def confirm(*args: Any, **kwargs: Any) -> Any:
        before()
        return real(*args, **kwargs)

    monkeypatch.setattr(finalise_module, "confirm", confirm)


def expire_leases(ledger: Ledger) -> None:
    """What the holder's silence past its lease looks like to the others."""
    with ledger.engine.begin() as connection:
        connection.execute(update(finalisation).values(lease_until=0.0))


@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_a_late_finaliser_never_publishes_its_older_round(
    database: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Item 1: the 10-trial round's finaliser stores its result, stalls, and meanwhile the
    20-trial round is finalised and published; when it resumes, nothing it writes replaces
    the newer round in ``<model>/``, ``<model>/studies/``, ``best/`` or the study attrs. The
    compare-and-set is SQL of its own: run on SQLite and on PostgreSQL."""
    if database == "postgres":
        url = str(request.getfixturevalue("postgres_url"))
        workdir, data = request.getfixturevalue("workdir"), request.getfixturevalue("sample_data")
        setup = make_setup(url, workdir, data, monkeypatch, OLD)
    else:
        setup = request.getfixturevalue("setup")
    newer: list[Any] = []

    def newer_round_publishes() -> None:
        setup.run_to(NEW)
        newer.append(setup.finalise_other())
        newer.append(setup.files())

    hook_complete(monkeypatch, after=once(newer_round_publishes))
    late = finalise(setup.study, setup.ctx, setup.ledger, setup.store, setup.url, QUICK)
    published, before = newer
    assert published.record.metadata.trial_number == 11
    assert published.record.metadata.complete_trials == NEW
    assert setup.files() == before  # byte for byte what the newer round published
    assert same(late, published)  # the late finaliser reports what is live
    assert len(late.notes) == 1 and "was not published: a newer round" in late.notes[0]
    assert f"chosen from {OLD} complete trials (trial 0)" in late.notes[0]
    scores = setup.other()[0].user_attrs["test_scores"]
    assert [s["trial_number"] for s in scores] == [0, 11]  # both rounds scored, oldest first
    assert scores[-1]["price_mae"] == json.loads(before["live"])["test"]["price_mae"]
    # the late round's record in the ledger says what it was chosen from
    (old,) = [r for r in setup.ledger.rounds(finalise_module.study_key(setup.study, setup.ctx))
              if r.trial_number != published.record.metadata.trial_number]  # fmt: skip
    assert json.loads(old.result)["metadata"]["complete_trials"] == OLD
    # and an export of the old round (once more) changes nothing either
    again = finalise(setup.study, setup.ctx, setup.ledger, setup.store, setup.url, QUICK)
    assert setup.files() == before and same(again, published)


def test_a_finaliser_paused_while_confirming_skips_the_test_once_a_newer_round_is_published(
    small: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Items 1 and 8: paused before its test scoring (3 trials) while a newer round (5 trials)
    is published, it never scores the test window, and leaves the newer round published."""
    newer: list[Any] = []

    def newer_round_publishes() -> None:
        small.run_to(5)
        newer.append(small.finalise_other())
        newer.append(small.files())

    hook_confirm(monkeypatch, once(newer_round_publishes))
    late = finalise(small.study, small.ctx, small.ledger, small.store, small.url, LONG_LEASE)
    published, before = newer
    assert len(small.test_scorings) == 1  # the newer round's only
    assert small.files() == before
    assert same(late, published) and not late.scored_here
    assert "was not finalised: a newer round (chosen from 5 complete trials" in late.notes[0]
    assert len(small.other()[0].user_attrs["test_scores"]) == 1


def test_a_finaliser_that_lost_its_lease_while_confirming_moves_on_without_scoring_the_test(
    small: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Item 8: paused while confirming past its lease; its successor finalises and publishes
    the same round. Resumed, it scores nothing more and returns the published record (before:
    it scored the test window a second time and failed with "lost the finalisation lease")."""
    successor: list[Finalised] = []

    def successor_finishes() -> None:
        expire_leases(small.ledger)
        successor.append(small.finalise_other())

    hook_confirm(monkeypatch, once(successor_finishes))
    late = finalise(small.study, small.ctx, small.ledger, small.store, small.url, LONG_LEASE)
    assert successor[0].scored_here and not late.scored_here
    assert len(small.test_scorings) == 1  # the successor's only
    assert same(late, successor[0]) and late.notes == ()
    assert len(small.other()[0].user_attrs["test_scores"]) == 1


def test_a_finaliser_that_lost_its_lease_before_storing_its_result_publishes_the_successors(
    small: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Item 8: it lost its lease after scoring (its successor stored and published the round
    first); resumed, its result is refused and it publishes the successor's, no error."""
    successor: list[Finalised] = []

    def successor_finishes() -> None:
        expire_leases(small.ledger)
        successor.append(small.finalise_other())

    hook_complete(monkeypatch, before=once(successor_finishes))
    late = finalise(small.study, small.ctx, small.ledger, small.store, small.url, LONG_LEASE)
    assert same(late, successor[0]) and late.scored_here
    live = json.loads((small.store / "fake" / "AAPL.json").read_text())
    assert live["metadata"]["created_at"] == successor[0].record.metadata.created_at
    assert len(small.other()[0].user_attrs["test_scores"]) == 1
