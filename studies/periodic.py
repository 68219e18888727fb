"""A background action repeated every few seconds while a block runs (heartbeats, leases)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from storage.faults import is_db_error, is_permanent, root_cause
from storage.outage import OUTAGE

logger = logging.getLogger(__name__)


class Periodic:
    """Run ``action`` every ``interval_s`` seconds in a daemon thread inside a ``with`` block.

    ``action`` returning ``False`` stops the repetition; an exception is logged once per run of
    failures (``what`` names the action) and the action is tried again next interval. A
    database outage is the process's one outage (:data:`storage.outage.OUTAGE`), not a
    warning of its own.
    """

    def __init__(self, what: str, interval_s: float, action: Callable[[], bool | None]) -> None:
        self._what = what
        self._interval_s = interval_s
        self._action = action
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=what)

    def __enter__(self) -> Periodic:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        failing = False
        while not self._stop.wait(self._interval_s):
            try:
                if self._action() is False:
                    return
                failing = False
                OUTAGE.recovered()
            except Exception as exc:  # noqa: BLE001 - retried at the next interval
                if is_db_error(exc) and not is_permanent(exc):
                    OUTAGE.failed(exc)
                    logger.debug("%s failed: %s", self._what, root_cause(exc))
                elif not failing:
                    logger.warning("%s failed: %s", self._what, root_cause(exc))
                failing = True
