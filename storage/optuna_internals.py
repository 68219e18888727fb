"""Every read of Optuna's private attributes, in one place (checked against Optuna 5.0).

Optuna's public API has no way to reach a study's storage from the study, a trial's or study's
storage id, or study system attrs (``Study.system_attrs`` and ``set_system_attr`` are
deprecated). The worker needs them to record heartbeats itself (Optuna's heartbeat thread runs
only inside ``optimize``), to read a trial back after a retried write, to fail another worker's
dead trial, to attach pictures where optuna-dashboard looks, and to write a trial's attrs in one
transaction (:func:`set_user_attrs`). No other module of ours may
touch ``_storage``, ``_trial_id`` or ``_study_id``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import optuna
from optuna.storages import BaseStorage, RDBStorage
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.storages._rdb import models
from optuna.study import StudySummary
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy import func
from sqlalchemy.dialects import postgresql, sqlite

Trial = optuna.Trial | FrozenTrial


def storage_of(study: optuna.Study) -> BaseStorage:
    """``study._storage``: the storage the study writes through (Optuna wraps an RDB storage
    in its trial cache); ``Study`` has no public accessor."""
    return study._storage


def study_id(study: optuna.Study | StudySummary) -> int:
    """``_study_id``: the storage's key of a study or summary; the public API names studies
    only, and our SQL reads Optuna's ``trials`` table by id."""
    return study._study_id


def trial_id(trial: Trial) -> int:
    """``_trial_id``: the storage's key of a trial (``number`` counts within a study only);
    storage methods take it and no public property gives it."""
    return trial._trial_id


def stored_trial(study: optuna.Study, trial: Trial) -> FrozenTrial:
    """The trial as stored now (``_storage.get_trial``): ``Study.get_trials`` reads every
    trial, and a live ``Trial`` has no public way to re-read its own state."""
    return storage_of(study).get_trial(trial_id(trial))


def heartbeat_storage(study: optuna.Study) -> BaseHeartbeat:
    """The study's storage as one that records heartbeats (RDB storages and Optuna's cache
    around one do; ``BaseHeartbeat`` is not exported); ``AttributeError`` for one that does
    not, as a call of its missing ``record_heartbeat`` would raise."""
    storage = storage_of(study)
    if not isinstance(storage, BaseHeartbeat):
        raise AttributeError(f"{type(storage).__name__} has no attribute 'record_heartbeat'")
    return storage


def record_heartbeat(study: optuna.Study, trial: Trial) -> None:
    """``_storage.record_heartbeat``: Optuna records heartbeats only inside ``optimize``,
    which cannot keep our cross-worker budget, so the worker records them itself."""
    heartbeat_storage(study).record_heartbeat(trial_id(trial))


def set_user_attrs(
    study: optuna.Study, trial: optuna.Trial, attrs: Mapping[str, Any], *, heartbeat: bool = False
) -> None:
    """A trial's user attrs (and, with ``heartbeat``, its heartbeat) in one transaction.

    Optuna has no bulk setter: ``Trial.set_user_attr`` is a transaction per attr (a read of
    the trial and an upsert each). On SQLite and PostgreSQL this is one read of the trial's
    state, one multi-row upsert (``_backend``: the RDB storage inside Optuna's trial cache)
    and one commit; elsewhere attr by attr. The live trial's copy
    (``_cached_frozen_trial``) is updated as ``set_user_attr`` does."""
    storage = storage_of(study)
    backend = getattr(storage, "_backend", storage)
    tid = trial_id(trial)
    if not isinstance(backend, RDBStorage) or backend.engine.name not in ("sqlite", "postgresql"):
        for key, value in attrs.items():
            storage.set_trial_user_attr(tid, key, value)
        if heartbeat:
            heartbeat_storage(study).record_heartbeat(tid)
    else:
        _upsert_user_attrs(backend, tid, attrs, heartbeat)
    trial._cached_frozen_trial.user_attrs.update(attrs)


def _upsert_user_attrs(
    backend: RDBStorage, tid: int, attrs: Mapping[str, Any], heartbeat: bool
) -> None:
    table = models.TrialUserAttributeModel.__table__
    dialect = sqlite if backend.engine.name == "sqlite" else postgresql
    session = backend.scoped_session()
    try:
        state = session.get(models.TrialModel, tid)
        if state is None:
            raise KeyError(f"no trial with id {tid}")
        backend.check_trial_is_updatable(tid, state.state)
        if attrs:
            insert = dialect.insert(table).values(
                [{"trial_id": tid, "key": k, "value_json": json.dumps(v)} for k, v in attrs.items()]
            )
            session.execute(insert.on_conflict_do_update(
                index_elements=[table.c.trial_id, table.c.key],
                set_={"value_json": insert.excluded.value_json},
            ))  # fmt: skip
        if heartbeat:
            beats = models.TrialHeartbeatModel.__table__
            insert = dialect.insert(beats).values(trial_id=tid, heartbeat=func.now())
            session.execute(insert.on_conflict_do_update(
                index_elements=[beats.c.trial_id], set_={"heartbeat": func.now()}
            ))  # fmt: skip
        session.commit()
    except BaseException:
        session.rollback()
        raise


def set_trial_state(study: optuna.Study, trial: Trial, state: TrialState) -> bool:
    """``_storage.set_trial_state_values``: fails another worker's dead trial without the
    checks and callbacks of ``Study.tell``, as Optuna's own stale-trial check does;
    raises ``UpdateFinishedTrialError`` if it is already finished."""
    return storage_of(study).set_trial_state_values(trial_id(trial), state=state)


def trial_id_of_number(study: optuna.Study, number: int) -> int:
    """``_storage.get_trial_id_from_study_id_trial_number``: a trial's storage key from its
    number, without reading every trial."""
    return storage_of(study).get_trial_id_from_study_id_trial_number(study_id(study), number)


def study_system_attrs(study: optuna.Study) -> dict[str, Any]:
    """``_storage.get_study_system_attrs``: ``Study.system_attrs`` is deprecated, and
    optuna-dashboard finds finished trials' artifacts there."""
    return storage_of(study).get_study_system_attrs(study_id(study))


def set_study_system_attr(study: optuna.Study, key: str, value: Any) -> None:
    """``_storage.set_study_system_attr``: ``Study.set_system_attr`` is deprecated (see
    :func:`study_system_attrs`)."""
    storage_of(study).set_study_system_attr(study_id(study), key, value)
