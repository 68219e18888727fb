"""Waiting for child processes: on their readiness signal, under a generous ceiling.

A test that waits for a process waits for what the process itself says or does (a line it
prints, such as the dashboard's banner printed once its port is bound; a condition it brings
about, such as trials in the database), never for a fixed short deadline: on a loaded machine
(load 10 on 2 cores) a dashboard took 30 s to come up. The ceiling, ``TEST_WAIT_CEILING_S``
(default 600 s), only stops a hung test; a process that exits before it is ready fails the test
at once. Either failure says what the process printed (issue 21, item 10).
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

CEILING_S = float(os.environ.get("TEST_WAIT_CEILING_S", "600"))
TAIL = 4000  # characters of a process's output quoted in a failure


class Child:
    """A child process whose output (stdout and stderr together) a thread collects as it is
    printed, so that a test can wait for a line and quote the output when it fails."""

    def __init__(
        self,
        command: Sequence[str | Path],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        name: str | None = None,
    ) -> None:
        self.name = name or " ".join(str(c) for c in command[-6:])
        self.process = subprocess.Popen(
            [str(c) for c in command],
            env=None if env is None else dict(env),
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        self._lines: list[str] = []
        self._done = False
        self._changed = threading.Condition()  # an RLock: describe() may run under it
        self._reader = threading.Thread(target=self._read, daemon=True, name=f"read {self.name}")
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self._lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._done = True
            self._changed.notify_all()

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def output(self) -> str:
        with self._changed:
            return "".join(self._lines)

    def exited(self) -> bool:
        return self.process.poll() is not None

    def describe(self) -> str:
        """The process's name, state and the tail of its output, for a failure message."""
        code = self.process.poll()
        state = "running" if code is None else f"exit code {code}"
        text = self.output
        tail = text if len(text) <= TAIL else "…" + text[-TAIL:]
        return f"--- {self.name} ({state}) printed:\n{tail or '(nothing)'}"

    def wait_for_line(self, pattern: str, ceiling: float = CEILING_S) -> re.Match[str]:
        """The first line matching the regular expression ``pattern``, once printed; fails at
        once if the process ends without printing it, or after ``ceiling`` seconds."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + ceiling
        seen = 0
        with self._changed:
            while True:
                for line in self._lines[seen:]:
                    found = regex.search(line)
                    if found:
                        return found
                seen = len(self._lines)
                if self._done:
                    self.process.wait()
                    raise AssertionError(f"ended before printing /{pattern}/\n{self.describe()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"did not print /{pattern}/ in {ceiling:.0f} s\n{self.describe()}"
                    )
                self._changed.wait(min(left, 1.0))

    def finish(self, ceiling: float = CEILING_S) -> tuple[int, str]:
        """Wait for the process to end by itself: (exit code, output). Fails with its output
        (and kills it) if it is still running after ``ceiling`` seconds."""
        try:
            code = self.process.wait(timeout=ceiling)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            self._reader.join(timeout=10)
            raise AssertionError(
                f"still running after {ceiling:.0f} s\n{self.describe()}"
            ) from None
        self._reader.join(timeout=10)
        return code, self.output

    def stop(self, ceiling: float = CEILING_S) -> int:
        """SIGTERM, then wait (SIGKILL after ``ceiling`` seconds); the exit code."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=ceiling)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=10)
        return self.process.returncode

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=10)


def wait_until(
    predicate: Callable[[], T | None],
    *children: Child,
    ceiling: float = CEILING_S,
    step: float = 0.1,
    what: str = "the condition",
) -> T:
    """Poll ``predicate`` until it returns something true (returned). Fails at once when one
    of ``children`` (the processes that bring it about) has ended and it still does not hold,
    or after ``ceiling`` seconds; either way with what they printed."""
    deadline = time.monotonic() + ceiling
    while True:
        ended = [c for c in children if c.exited()]
        value = predicate()
        if value:
            return value
        if ended:
            raise AssertionError(
                f"{what} did not hold and a process ended\n"
                + "\n".join(c.describe() for c in ended)
            )
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{what} did not hold in {ceiling:.0f} s\n"
                + "\n".join(c.describe() for c in children)
            )
        time.sleep(step)
