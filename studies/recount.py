"""A finished round's record as it is published now: with the study's current trial count.

A study resumed to more trials whose candidates did not change keeps its round (nothing new to
confirm or test), but its record should not say it was chosen from the trials it had then: the
published record counts the study's complete trials now (``metadata.complete_trials``) and says
when the newest of them finished (``metadata.updated_at``). Both come from the database, so
every worker publishing the round writes the same bytes; ``created_at`` stays when the winner
was scored. The ledger's copy of the round is left as it was scored.
"""

from __future__ import annotations

import dataclasses
import datetime

import optuna
from optuna.trial import TrialState

from storage.record import Record


def as_published(study: optuna.Study, record: Record) -> Record:
    """``record`` with the study's complete trials and ``updated_at`` when the study has more
    complete trials than the record counts; else ``record`` itself."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    counted = record.metadata.complete_trials
    if counted is None or len(complete) <= counted:
        return record
    finished = [t.datetime_complete for t in complete if t.datetime_complete is not None]
    updated = _iso(max(finished)) if finished else record.metadata.updated_at
    metadata = dataclasses.replace(
        record.metadata, complete_trials=len(complete), updated_at=updated
    )
    return dataclasses.replace(record, metadata=metadata)


def _iso(stamp: datetime.datetime) -> str:
    """ISO 8601 with offset, in UTC (Optuna stores naive local times)."""
    if stamp.tzinfo is None:
        stamp = stamp.astimezone()  # the local time it was recorded in
    return stamp.astimezone(datetime.UTC).isoformat(timespec="seconds")
