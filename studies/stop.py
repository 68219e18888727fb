"""Stop requests (Ctrl-C, SIGTERM) that cannot be lost.

Python delivers a signal by raising ``KeyboardInterrupt`` at whatever the main thread is doing,
and an exception raised inside a garbage-collection callback is printed as "Exception ignored"
and dropped: about once in 180 tries, a Ctrl-C landed in SQLAlchemy's ``_collection_gced``
and the worker went on to finish its study. So the handler also records the request, and the
worker checks it where a lost interrupt would matter: before each trial and before telling a
trial's result (an interrupted trial is queued again, never told).
"""

from __future__ import annotations

import signal
import threading

_requested = threading.Event()


def _request_stop(_signum: int, _frame: object) -> None:
    _requested.set()
    raise KeyboardInterrupt


def install_stop_handlers() -> None:
    """Make Ctrl-C and SIGTERM request a stop (a fresh request state for this command)."""
    _requested.clear()
    signal.signal(signal.SIGINT, _request_stop)
    signal.signal(signal.SIGTERM, _request_stop)


def raise_if_stop_requested() -> None:
    """Raise ``KeyboardInterrupt`` again if a stop was requested (its first raise may be lost)."""
    if _requested.is_set():
        raise KeyboardInterrupt
