"""Open Optuna's RDB storage with heartbeats, retries of stale trials, and a hardened engine."""

from __future__ import annotations

import logging
import time
import warnings

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from sqlalchemy.engine import URL
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from storage.engine import engine_kwargs, harden
from storage.exceptions import StorageError
from storage.faults import is_permanent, root_cause
from storage.urls import redact, render

logger = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_S = 10
GRACE_PERIOD_S = 60
MAX_RETRY = 3
OUTAGE_S = 60.0  # how long a database that refuses connections is waited for


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
    (workers often start before it); a permanent error (wrong password, missing database or
    role) fails at once with the driver's reason. Callers open it through
    :class:`storage.database.Database`, which builds the ledger on the same engine.
    """
    deadline = time.monotonic() + outage_s
    attempt = 0
    warned = False
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
            if is_permanent(exc) or time.monotonic() > deadline:
                raise StorageError(
                    f"cannot open storage {redact(url)}: {root_cause(exc)}"
                ) from None
            if not warned:
                logger.warning(
                    "storage %s not ready (%s); retrying for up to %.0f s",
                    redact(url), root_cause(exc), outage_s,
                )  # fmt: skip
                warned = True
            time.sleep(min(0.5 * 2 ** min(attempt, 4), 5.0))
            continue
        harden(storage.engine)
        return storage


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
