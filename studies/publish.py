"""Publishing a finished finalisation round: the ledger's compare-and-set, then the store
files, the study attrs, the picture and the dashboard note, idempotent.

Monotone: the compare-and-set of the published round (:meth:`storage.ledger.Ledger.publish`)
runs under the store's symbol lock before any file is written, so the store files follow it;
the study attrs and pictures are written after it and checked against it afterwards, and a
round overtaken meanwhile is followed by publishing the newer one.

Every storage call here waits out a database outage (``retry``, the worker's policy:
:class:`studies.resilient.Retry`), one call or one idempotent group of calls at a time, so a
retry never writes a store file twice or loses the lines that say what a file replaced.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import optuna

from storage.ledger import Ledger, Publication
from storage.record import Record
from storage.store import Publish, Summary, read_stored, write_picture, write_record
from studies import attrs as keys
from studies.context import StudyContext
from studies.exceptions import StudyError
from studies.headline import headline
from studies.note import attach, write_note
from studies.picture import render
from studies.recount import as_published
from studies.resilient import Retry


@dataclass(frozen=True)
class Finalised:
    """The exported record, where it was written, and whether this call scored the test."""

    record: Record
    path: Path  # the live record when this study's record is live, else the study's own
    scored_here: bool
    replaced: list[str]  # one line per store file this call overwrote
    #: one line each: a file left as it is and why, a foreign file replaced or seen
    notes: tuple[str, ...] = ()
    live: bool = True  # whether the study's record is the live <model>/<SYMBOL>.json


def trials_of(record: Record) -> int:
    """The complete trials a record's round was chosen from (0 when an old record lacks it)."""
    return record.metadata.complete_trials or 0


def publish(
    study: optuna.Study,
    ctx: StudyContext,
    ledger: Ledger,
    key: str,
    round_key: str,
    record: Record | None,
    store: Path,
    *,
    scored_here: bool,
    publish: Publish | None = None,
    notes: tuple[str, ...] = (),
    retry: Retry | None = None,
) -> Finalised:
    """Publish a finished round (``record``; ``None``: read it from the ledger), or the newer
    round that is published instead: the result is always the study's newest published round.
    ``retry``: how storage calls wait out a database outage (default: 60 s).
    """
    retry = retry or Retry()
    said = list(notes)
    for _ in range(100):  # each pass moves to a newer round, or returns
        if record is None:
            record = retry(partial(_round_record, ledger, key, round_key, ctx))
        done, newer = _publish_round(
            study, ctx, ledger, key, round_key, record, store, publish, retry
        )
        if done is not None:
            return dataclasses.replace(done, scored_here=scored_here, notes=(*said, *done.notes))
        assert newer is not None
        if not said:
            said.append(
                f"{ctx.name}: the round chosen from {trials_of(record)} complete trials "
                f"(trial {record.metadata.trial_number}) was not published: a newer round "
                f"(chosen from {newer.complete_trials} complete trials, trial "
                f"{newer.trial_number}) is published; the store and the study's winner keep it"
            )
        round_key, record = newer.round_key, None
    raise StudyError(f"the published round of {ctx.name} kept changing; export again")


def _round_record(ledger: Ledger, key: str, round_key: str, ctx: StudyContext) -> Record:
    for done in ledger.rounds(key):
        if done.round_key == round_key:
            return Record.from_json(done.result, f"the finalisation row of {ctx.name}")
    raise StudyError(f"the published round of {ctx.name} has no finished row; export again")


def _publish_round(
    study: optuna.Study,
    ctx: StudyContext,
    ledger: Ledger,
    key: str,
    round_key: str,
    record: Record,
    store: Path,
    publish: Publish | None,
    retry: Retry,
) -> tuple[Finalised | None, Publication | None]:
    """Everything derived from a finished round, idempotent: attrs, store, note.

    The study's own record is always written; the live record and ``best/`` as
    :func:`storage.store.write_record` allows (``publish``). Returns ``(None, newer)`` when a
    newer round is published: refused before anything was written, or published while this
    one was writing its attrs (the caller then publishes ``newer``).
    """
    refused: list[Publication] = []

    def guard() -> str | None:  # under the store's symbol lock; the compare-and-set is idempotent
        newer = retry(
            lambda: ledger.publish(key, round_key, trials_of(record), record.metadata.trial_number)
        )
        if newer is None:
            return None
        refused.append(newer)
        return "a newer round is published"

    # the study's trial count now (the files only)
    published = retry(lambda: as_published(study, record))
    written = write_record(store, published, publish, guard)
    if not written.published:
        return None, refused[0]
    retry(lambda: _mirror_test_scores(study, ledger, key))
    study_path = written.study_path
    assert study_path is not None
    retry(lambda: _set_attrs(study, record, study_path, store))
    png = render(record)
    picture = write_picture(
        store, ctx.model, ctx.symbol, png, study_name=record.metadata.study_name
    )
    if written.live:
        write_picture(store, ctx.model, ctx.symbol, png)
    attach(study, record, picture, Path(store), retry)
    shown = written.path if written.live else study_path
    retry(lambda: write_note(study, record, shown))  # the same note again; its version moves on
    latest = retry(lambda: ledger.published(key))
    if latest is not None and latest.round_key != round_key:
        return None, latest  # overtaken while writing the attrs: they follow the newer round
    replaced = []
    stored = read_stored(store, "best", ctx.symbol) if written.best_replaced else None
    best = stored if isinstance(stored, Record) else None
    for what, old, new in (
        (str(written.path), written.replaced, record),
        (str(written.best_path), written.best_replaced, best),
    ):
        if not old or "foreign" in old or _same_winner(old, new):
            continue  # a replaced foreign file has its line in the notes
        if "unreadable" in old:
            replaced.append(f"{what}: replaced an unreadable file ({old['unreadable']})")
            continue
        replaced.append(
            f"{what}: replaced the {old.get('model', ctx.model)} record of study "
            f"{old.get('study_name')} trial {old.get('trial_number')} "
            f"(validation {old.get('objective', 'price_mae')} {old.get('validation')})"
        )
    finalised = Finalised(published, shown, True, replaced, notes=written.notes, live=written.live)
    return finalised, None


def _set_attrs(study: optuna.Study, record: Record, study_path: Path, store: Path) -> None:
    """The study attrs that follow the published round (upserts of values read from
    ``record``: repeated, they change nothing)."""
    keys.set_if_changed(study, keys.EXPORT_PATH, str(study_path.resolve()))
    keys.set_if_changed(study, keys.STORE, str(Path(store).resolve()))  # status's live record
    for attr, value in headline(record).items():  # the dashboard's first attrs
        keys.set_if_changed(study, attr, value)
    keys.set_if_changed(study, keys.CONFIRMATION, keys.selection_of(record).to_json())
    keys.set_if_changed(study, keys.WINNER, keys.winner_summary(record))


def _same_winner(old: Summary, new: Record | None) -> bool:
    """Whether a replaced record named the same study and trial as its replacement."""
    if new is None:
        return False
    return (old.get("model"), old.get("study_name"), old.get("trial_number")) == (
        new.model,
        new.metadata.study_name,
        new.metadata.trial_number,
    )


def _mirror_test_scores(study: optuna.Study, ledger: Ledger, key: str) -> None:
    """Set ``test_scores`` from this incarnation's finished rounds (no lost updates), oldest
    round first: by the complete trials each was chosen from, then in the order the database
    finished them (a late finaliser's older round comes before the newer one)."""
    finished = [
        (done, Record.from_json(done.result, f"the finalisation row of {key}"))
        for done in ledger.rounds(key)
    ]
    scores = [
        keys.test_score(done.round_key, record)
        for done, record in sorted(finished, key=lambda pair: trials_of(pair[1]))
    ]
    keys.set_if_changed(study, keys.TEST_SCORES, scores)
