"""Fail trials whose worker died, and queue their parameters again.

Three ways a RUNNING trial is known dead (docs/design-notes.md, "Dead trials"):

* its recorded worker ran on this host and that process is gone: failed at once;
* it has no worker recorded and started longer than the grace period ago (killed between
  ``ask`` and its first heartbeat, which Optuna's heartbeat check never sees);
* its heartbeat is older than the grace period (Optuna's ``fail_stale_trials``).

Callers hold the study's budget lock, so a trial just taken from the queue, still carrying the
dead worker's attrs until its new owner is written, is never mistaken for a dead one.
"""

from __future__ import annotations

import datetime
import logging
import warnings

import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from storage.optuna_internals import set_trial_state, stored_trial
from studies import attrs as keys
from studies.owners import WORKER_ATTR, is_dead_local

logger = logging.getLogger(__name__)


def recover_dead_trials(
    study: optuna.Study, grace_period_s: float, max_retry: int, *, orphans_now: bool = False
) -> list[int]:
    """Fail and re-queue dead trials; return the numbers of the trials this call failed.

    ``orphans_now``: a worker retrying its own ``ask`` after a lost acknowledgement fails
    trials that have no worker at once (under the budget lock every live taker has written its
    worker before releasing it, so such a trial is the lost ``ask``'s)."""
    now = datetime.datetime.now()
    failed: list[FrozenTrial] = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get(WORKER_ATTR)
        if worker is None:
            started = trial.datetime_start or now
            dead = orphans_now or (now - started).total_seconds() > grace_period_s
        else:
            dead = is_dead_local(str(worker))
        if dead and _fail(study, trial):
            failed.append(stored_trial(study, trial))
    retry = RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
    for trial in failed:
        logger.warning("trial %d of %s: worker died; retrying", trial.number, study.study_name)
        retry(study, trial)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    return [trial.number for trial in failed]


#: user attrs a re-queued trial must not inherit (they describe the interrupted run)
RUN_ATTRS = (keys.FAIL_REASON, keys.INTERRUPTED, keys.WORKER)


def requeue_interrupted(study: optuna.Study, trial: FrozenTrial, max_retry: int) -> None:
    """Queue an interrupted trial's parameters again, as Optuna's retry callback does (system
    attrs ``failed_trial`` and ``retry_history``), but without its run's failure reason: the
    retry is a fresh run, not a failed one."""
    history = list(trial.system_attrs.get("retry_history", []))
    if len(history) >= max_retry:
        return
    original = trial.system_attrs.get("failed_trial", trial.number)
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.WAITING,
            params=trial.params,
            distributions=trial.distributions,
            user_attrs={k: v for k, v in trial.user_attrs.items() if k not in RUN_ATTRS}
            | {"retry_of": trial.number},
            system_attrs={"failed_trial": original, "retry_history": [*history, trial.number]},
        )
    )


def _fail(study: optuna.Study, trial: FrozenTrial) -> bool:
    try:
        return set_trial_state(study, trial, TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        return False  # another worker failed it first
