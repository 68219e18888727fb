"""Open Optuna's RDB storage with heartbeats, retries of stale trials, and a hardened engine."""

from __future__ import annotations

import logging
import time
import warnings

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from storage.engine import engine_kwargs, harden
from storage.exceptions import StorageError
from storage.urls import redact

logger = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_S = 10
GRACE_PERIOD_S = 60
MAX_RETRY = 3


def open_storage(
    url: str,
    *,
    heartbeat_interval: int = HEARTBEAT_INTERVAL_S,
    grace_period: int = GRACE_PERIOD_S,
    max_retry: int = MAX_RETRY,
    attempts: int = 5,
) -> RDBStorage:
    """Optuna's RDB storage on ``url``; stale trials are failed and retried ``max_retry`` times.

    Connection failures are retried with back-off (workers often start before the database).
    """
    last_error: Exception | None = None
    for attempt in range(attempts):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = _rdb_storage(url, heartbeat_interval, grace_period, max_retry)
        except (IntegrityError, ProgrammingError) as exc:  # workers creating tables together
            last_error = exc
            time.sleep(0.2 + 0.3 * attempt)
            continue
        except (OperationalError, optuna.exceptions.StorageInternalError) as exc:
            last_error = exc
            logger.warning("storage %s not ready (%s); retrying", redact(url), type(exc).__name__)
            time.sleep(min(0.5 * 2**attempt, 8.0))
            continue
        harden(storage.engine)
        return storage
    reason = str(getattr(last_error, "orig", last_error)).strip().splitlines()[0]
    raise StorageError(f"cannot open storage {redact(url)}: {reason}")


def _rdb_storage(
    url: str, heartbeat_interval: int, grace_period: int, max_retry: int
) -> RDBStorage:
    return RDBStorage(
        url,
        engine_kwargs=engine_kwargs(url),
        heartbeat_interval=heartbeat_interval,
        grace_period=grace_period,
        heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=max_retry),
    )
