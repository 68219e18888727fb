"""Open Optuna's RDB storage with heartbeats, retries of stale trials, and a hardened engine."""

from __future__ import annotations

import logging
import time
import warnings

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from sqlalchemy.engine import URL
from sqlalchemy.exc import DatabaseError, IntegrityError, OperationalError, ProgrammingError

from storage.engine import engine_kwargs, harden
from storage.exceptions import DatabaseUnreachableError, StorageError
from storage.faults import is_permanent, root_cause
from storage.outage import OUTAGE, WINDOW_S
from storage.urls import redact, render

logger = logging.getLogger(__name__)

#: how Optuna's RDB storage logs a failed trials query (then retried once, and raised)
OPTUNA_QUERY_WARNING = "Caught an error from sqlalchemy"

HEARTBEAT_INTERVAL_S = 10
GRACE_PERIOD_S = 60
MAX_RETRY = 3
OUTAGE_S = WINDOW_S  # how long a database that refuses connections is waited for


def open_storage(
    url: URL,
    *,
    heartbeat_interval: int = HEARTBEAT_INTERVAL_S,
    grace_period: int = GRACE_PERIOD_S,
    max_retry: int = MAX_RETRY,
    outage_s: float = OUTAGE_S,
) -> RDBStorage:
    """Optuna's RDB storage on ``url``; stale trials are failed and retried ``max_retry`` times.

    A database that refuses connections is retried with back-off for ``outage_s`` seconds
    (workers often start before it; one line when the wait starts and one when it ends,
    :mod:`storage.outage`), then given up with :class:`DatabaseUnreachableError` (exit code
    3); a permanent error (wrong password, missing database or role, a file that is not a
    SQLite database) fails at once with the driver's reason. Callers open it through
    :class:`storage.database.Database`, which builds the ledger on the same engine.
    """
    quiet_optuna_outage_warnings()
    deadline = time.monotonic() + outage_s
    attempt = 0
    while True:
        attempt += 1
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = _rdb_storage(url, heartbeat_interval, grace_period, max_retry)
        except (IntegrityError, ProgrammingError) as exc:  # workers creating tables together
            if attempt > 5 or is_permanent(exc):
                raise StorageError(
                    f"cannot open storage {redact(url)}: {root_cause(exc)}"
                ) from None
            time.sleep(0.2 + 0.3 * attempt)
            continue
        except (OperationalError, optuna.exceptions.StorageInternalError) as exc:
            if is_permanent(exc):
                raise StorageError(_cannot_open(url, exc)) from None
            if time.monotonic() > deadline:
                OUTAGE.given_up()
                raise DatabaseUnreachableError(
                    f"{_cannot_open(url, exc)} (unreachable for {outage_s:.0f} s; run the "
                    "command again once it is up)"
                ) from None
            OUTAGE.failed(exc, outage_s)  # one line per outage, one when it ends
            time.sleep(min(0.5 * 2 ** min(attempt, 4), 5.0))
            continue
        except DatabaseError as exc:  # SQLite: not a database, or a damaged one
            raise StorageError(_cannot_open(url, exc)) from None
        OUTAGE.recovered()
        harden(storage.engine)
        return storage


def _cannot_open(url: URL, exc: BaseException) -> str:
    return f"cannot open storage {redact(url)}: {root_cause(exc)}"


class _OptunaQueryWarnings(logging.Filter):
    """Drops Optuna's multi-line ``Caught an error from sqlalchemy: … [SQL: …]`` warning (a
    failed trials query it retries once before raising) to debug: during an outage the worker
    prints one line per outage itself (``studies/worker.py``), naming the driver's reason."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith(OPTUNA_QUERY_WARNING):
            return True
        logger.debug("optuna: %s", record.getMessage().splitlines()[0])
        return False


def quiet_optuna_outage_warnings() -> None:
    """Install :class:`_OptunaQueryWarnings` on Optuna's RDB storage logger (once)."""
    optuna_logger = logging.getLogger("optuna.storages._rdb.storage")
    if not any(isinstance(f, _OptunaQueryWarnings) for f in optuna_logger.filters):
        optuna_logger.addFilter(_OptunaQueryWarnings())


def _rdb_storage(
    url: URL, heartbeat_interval: int, grace_period: int, max_retry: int
) -> RDBStorage:
    return RDBStorage(
        render(url),
        engine_kwargs=engine_kwargs(url),
        heartbeat_interval=heartbeat_interval,
        grace_period=grace_period,
        heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=max_retry),
    )
