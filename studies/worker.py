"""The worker loop: take a trial within the study's exact budget, run it with a heartbeat, tell.

``n_trials`` is the study's total target of finished (complete or pruned) trials, whoever runs
them: under the study's budget lock a worker counts finished, running and waiting trials and
asks for a trial only while ``finished + running < n_trials`` or a queued retry is waiting.
While other workers' trials are running and the budget is spoken for, a worker waits, checking
for dead trials, so a killed worker's trial is failed, re-queued and finished by someone else.
"""

from __future__ import annotations

import logging
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import optuna
from optuna.trial import TrialState
from tqdm import tqdm

from storage.faults import is_db_error, is_permanent, root_cause
from storage.ledger import Ledger, trial_counts
from storage.optuna_internals import (
    record_heartbeat,
    set_user_attrs,
    stored_trial,
    study_id,
    trial_id,
)
from storage.sqlite_file import SqliteFile
from studies import attrs as keys
from studies.context import StudyContext
from studies.exceptions import StudyError
from studies.objective import objective
from studies.owners import WORKER_ATTR, this_worker
from studies.periodic import Periodic
from studies.recovery import recover_dead_trials, requeue_interrupted
from studies.resilient import Retry
from studies.sampler import pruner, sampler_for_trial
from studies.stop import raise_if_stop_requested

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class WorkerSettings:
    """How a worker runs trials and survives failures."""

    heartbeat_interval_s: int = 10
    grace_period_s: int = 60
    max_retry: int = 3  # re-queues of a trial whose worker died or was interrupted
    objective_attempts: int = 3  # in-process attempts of an objective that raises
    max_consecutive_failures: int = 5
    db_outage_s: float = 60.0
    poll_s: float = 1.0
    progress: bool = True
    #: the SQLite file the study lives in (``Database.sqlite_file``), checked on each take
    database_file: SqliteFile | None = None

    @property
    def retry(self) -> Retry:
        """The retry policy of this worker's storage calls (finalisation's too)."""
        return Retry(self.db_outage_s, self.database_file)


@dataclass(frozen=True)
class RunOutcome:
    """What one worker did to one study."""

    ran: int
    finished: int
    target: int
    reached: bool


def run_study(
    study: optuna.Study,
    ctx: StudyContext,
    ledger: Ledger,
    n_trials: int,
    settings: WorkerSettings,
    timeout_s: float | None = None,
) -> RunOutcome:
    """Run trials of ``study`` until it has ``n_trials`` finished trials (or ``timeout_s``)."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    study.pruner = pruner()  # acts only on trials that report (StudyContext.prune_chunk)
    counts = _resilient(lambda: _counts(study, ledger), settings)
    bar = tqdm(
        total=n_trials,
        initial=min(_finished(counts), n_trials),
        desc=ctx.name,
        disable=not settings.progress,
        leave=False,
        unit="trial",
    )
    ran = 0
    consecutive_failures = 0
    recovery = _RecoveryClock(settings.heartbeat_interval_s)
    try:
        while deadline is None or time.monotonic() < deadline:
            raise_if_stop_requested()
            trial, counts = _resilient(
                _Take(study, ctx, ledger, n_trials, settings, recovery), settings
            )
            bar.n = min(_finished(counts), n_trials)
            bar.refresh()
            if trial is None:
                if _finished(counts) >= n_trials:
                    break
                time.sleep(settings.poll_s)  # budget spoken for by running trials: watch them
                continue
            state = _run_trial(study, trial, ctx, settings)
            ran += 1
            consecutive_failures = consecutive_failures + 1 if state == TrialState.FAIL else 0
            if consecutive_failures >= settings.max_consecutive_failures:
                last = stored_trial(study, trial).user_attrs.get(keys.FAIL_REASON)
                raise StudyError(
                    f"{consecutive_failures} trials of {ctx.name} failed in a row "
                    f"(last: {last}); each trial's fail_reason is in the dashboard"
                )
    finally:
        bar.close()
    counts = _resilient(lambda: _counts(study, ledger), settings)
    finished = _finished(counts)
    return RunOutcome(ran=ran, finished=finished, target=n_trials, reached=finished >= n_trials)


def _counts(study: optuna.Study, ledger: Ledger) -> dict[str, int]:
    return trial_counts(ledger.engine, study_id(study))


def _finished(counts: dict[str, int]) -> int:
    return counts.get("COMPLETE", 0) + counts.get("PRUNED", 0)


class _Take:
    """One take of a trial, retried as a whole by :func:`_resilient`. A retry after ``ask``
    returned resumes with that trial; a retry after an ``ask`` whose acknowledgement was lost
    first fails the trial it may have left behind (RUNNING, no worker), so none runs twice."""

    def __init__(self, *args: Any) -> None:
        self._args = args
        self._tries = 0
        self.asked: list[optuna.Trial] = []  # the trial ``ask`` returned, if it did

    def __call__(self) -> tuple[optuna.Trial | None, dict[str, int]]:
        self._tries += 1
        try:
            return _take_trial(*self._args, retry=self._tries > 1, asked=self.asked)
        except optuna.exceptions.UpdateFinishedTrialError:
            # another worker failed the trial we asked for while the database was away (it
            # looked owner-less) and queued its parameters again: take another one
            logger.warning("the trial taken during an outage was failed by another worker")
            self.asked.clear()
            return _take_trial(*self._args, retry=True, asked=self.asked)


def _take_trial(
    study: optuna.Study,
    ctx: StudyContext,
    ledger: Ledger,
    n_trials: int,
    settings: WorkerSettings,
    recovery: _RecoveryClock,
    *,
    retry: bool = False,
    asked: list[optuna.Trial] | None = None,
) -> tuple[optuna.Trial | None, dict[str, int]]:
    """Under the budget lock: recover dead trials, then ask only if the budget allows.
    First, the SQLite file must still be the one the study was opened in."""
    _check_file(settings)
    asked = [] if asked is None else asked
    with ledger.budget_lock(study.study_name):
        if asked:  # a retry: ask returned, recording its owner failed
            trial = asked[0]
            set_user_attrs(study, trial, {WORKER_ATTR: this_worker()}, heartbeat=True)
            study.sampler = sampler_for_trial(ctx.seed, trial.number)
            return trial, _counts(study, ledger)
        if retry or recovery.due():
            recover_dead_trials(
                study, settings.grace_period_s, settings.max_retry, orphans_now=retry
            )
        counts = _counts(study, ledger)
        finished, running = _finished(counts), counts.get("RUNNING", 0)
        if finished >= n_trials:
            return None, counts
        if counts.get("WAITING", 0) == 0 and finished + running >= n_trials:
            return None, counts
        with warnings.catch_warnings():  # we run the heartbeat ourselves (see _heartbeat)
            warnings.filterwarnings("ignore", message="Heartbeat of storage")
            trial = study.ask()
        asked.append(trial)
        set_user_attrs(study, trial, {WORKER_ATTR: this_worker()}, heartbeat=True)
    study.sampler = sampler_for_trial(ctx.seed, trial.number)  # read at suggest time
    return trial, counts


def _run_trial(
    study: optuna.Study, trial: optuna.Trial, ctx: StudyContext, settings: WorkerSettings
) -> TrialState | None:
    """Run the objective with a heartbeat; retry exceptions, then record FAIL with the reason.
    ``None``: the trial was finished by another worker meanwhile (not a failure of ours)."""
    heartbeat = _heartbeat(study, trial, settings.heartbeat_interval_s)
    value: float | None = None
    reason = ""
    try:
        with heartbeat:
            attempt = 0
            while attempt < settings.objective_attempts:
                attempt += 1
                try:
                    value = objective(trial, ctx)
                    raise_if_stop_requested()  # its own interrupt may have been lost
                    break
                except optuna.TrialPruned:
                    return _tell(study, trial, TrialState.PRUNED, None, settings)
                except optuna.exceptions.UpdateFinishedTrialError:
                    # another worker declared it dead (e.g. silent through an outage) and
                    # re-queued its parameters: it is no longer ours
                    logger.warning(
                        "trial %d was finished by another worker; moving on", trial.number
                    )
                    return None
                except Exception as exc:  # noqa: BLE001 - recorded on the trial, then retried
                    if is_db_error(exc) and not is_permanent(exc):
                        # the database, not the trial, failed: wait for it, then try again
                        # without using up an attempt (suggested params are kept)
                        logger.debug("trial %d: %s", trial.number, root_cause(exc))
                        _resilient(lambda: stored_trial(study, trial), settings)
                        attempt -= 1
                        continue
                    reason = root_cause(exc) if is_db_error(exc) else f"{type(exc).__name__}: {exc}"
                    logger.warning(
                        "trial %d attempt %d/%d failed: %s",
                        trial.number,
                        attempt,
                        settings.objective_attempts,
                        reason,
                    )
                    logger.debug("%s", traceback.format_exc())
                    _free_accelerator_memory()
    except BaseException:  # interrupted (Ctrl-C, SIGTERM): fail it and queue it again
        _interrupt(study, trial, settings)
        raise
    if value is None:
        try:
            _resilient(lambda: trial.set_user_attr(keys.FAIL_REASON, reason[:500]), settings)
        except optuna.exceptions.UpdateFinishedTrialError:
            return None
        return _tell(study, trial, TrialState.FAIL, None, settings)
    return _tell(study, trial, TrialState.COMPLETE, value, settings)


def _tell(
    study: optuna.Study,
    trial: optuna.Trial,
    state: TrialState,
    value: float | None,
    settings: WorkerSettings,
) -> TrialState:
    """``study.tell``, idempotent: a trial already finished (by this worker's attempt whose
    acknowledgement was lost, or by another worker that declared it dead during a database
    outage) is left as it is, and its stored state is returned."""

    def tell_once() -> TrialState:
        return study.tell(trial, value, state=state, skip_if_finished=True).state

    try:
        told = _resilient(tell_once, settings)
    except optuna.exceptions.UpdateFinishedTrialError:  # finished between the read and the write
        logger.warning("trial %d was failed by another worker meanwhile", trial.number)
        return TrialState.FAIL
    if told != state:
        logger.warning("trial %d was finished as %s by another worker", trial.number, told.name)
    return told


def _interrupt(study: optuna.Study, trial: optuna.Trial, settings: WorkerSettings) -> None:
    try:
        trial.set_user_attr(keys.INTERRUPTED, True)  # status counts these apart from failures
        trial.set_user_attr(keys.FAIL_REASON, "interrupted (Ctrl-C or SIGTERM); queued again")
        study.tell(trial, state=TrialState.FAIL)
        requeue_interrupted(study, stored_trial(study, trial), settings.max_retry)
    except Exception as exc:  # noqa: BLE001 - best effort on the way out; recovery covers it
        logger.warning(
            "could not record the interruption of trial %d: %s", trial.number, root_cause(exc)
        )


def _resilient(call: Callable[[], T], settings: WorkerSettings) -> T:
    """Run a storage call under the worker's retry policy (:class:`studies.resilient.Retry`:
    transient database errors retried for up to ``db_outage_s``, then exit code 3; permanent
    ones fail at once). Every call given here must be idempotent (``docs/design-notes.md``,
    "Retried writes")."""
    return settings.retry(call)


def _check_file(settings: WorkerSettings) -> None:
    settings.retry.check_file()


def _free_accelerator_memory() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class _RecoveryClock:
    """Dead-trial checks at the first take, then at most once per heartbeat interval."""

    def __init__(self, interval_s: float) -> None:
        self._interval_s = interval_s
        self._next = 0.0

    def due(self) -> bool:
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + self._interval_s
        return True


def _heartbeat(study: optuna.Study, trial: optuna.Trial, interval_s: int) -> Periodic:
    """Records the trial's heartbeat every ``interval_s`` seconds while it runs."""
    return Periodic(
        f"heartbeat of trial id {trial_id(trial)}",
        interval_s,
        lambda: record_heartbeat(study, trial),
    )
