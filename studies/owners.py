"""Who runs a trial: host, pid and process start time, so dead owners are recognised at once."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from studies.attrs import WORKER

WORKER_ATTR = WORKER


def process_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), or ``None`` if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def this_worker() -> str:
    """``host:pid:start`` of the current process."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{process_start(pid) or '?'}"


def is_dead_local(worker: str) -> bool:
    """``True`` only when ``worker`` ran on this host and that process no longer exists."""
    try:
        host, pid_text, start = worker.rsplit(":", 2)
        pid = int(pid_text)
    except ValueError:
        return False
    if host != socket.gethostname():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    current = process_start(pid)
    return start != "?" and current is not None and current != start  # pid reused
