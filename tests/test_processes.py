"""Issue 21, item 10: the tests' waits for a process (``tests/processes.py``) end on its
readiness signal however late it comes, at once when it dies first, and quote what it printed.

The dashboard tests wait for the banner ``optimise dashboard`` prints once its port is bound;
before, they polled the port under a fixed 20 s or 30 s deadline, and on a loaded machine (load
10 on 2 cores) the dashboard took about 30 s to come up and the test failed with "connection
refused" and nothing of what the dashboard printed."""

from __future__ import annotations

import sys
import time

import pytest

from tests.processes import Child, wait_until


def python(code: str) -> list[str]:
    return [sys.executable, "-u", "-c", code]


def test_a_late_readiness_line_is_waited_for_and_returned() -> None:
    late = "import time; print('loading'); time.sleep(1.5); print('ready on 4242')"
    with Child(python(late)) as child:
        assert child.wait_for_line(r"ready on (\d+)").group(1) == "4242"
        assert child.finish() == (0, "loading\nready on 4242\n")


def test_a_process_that_dies_before_it_is_ready_fails_at_once_with_what_it_printed() -> None:
    started = time.monotonic()
    with Child(python("import sys; print('error: port in use'); sys.exit(2)"), name="dash") as c:
        with pytest.raises(AssertionError) as failed:
            c.wait_for_line("ready", ceiling=300)
    assert time.monotonic() - started < 60  # not the ceiling
    message = str(failed.value)
    assert "ended before printing /ready/" in message
    assert "--- dash (exit code 2) printed:\nerror: port in use" in message


def test_a_condition_waited_for_fails_with_the_output_of_the_process_that_ended() -> None:
    with Child(python("print('Traceback: boom')"), name="worker") as c:
        with pytest.raises(AssertionError) as failed:
            wait_until(lambda: False, c, ceiling=300, what="3 complete trials")
    assert "3 complete trials did not hold and a process ended" in str(failed.value)
    assert "--- worker (exit code 0) printed:\nTraceback: boom" in str(failed.value)


def test_a_hung_process_fails_after_the_ceiling_with_its_output() -> None:
    with Child(python("import time; print('stuck'); time.sleep(60)"), name="hung") as c:
        with pytest.raises(AssertionError) as failed:
            c.wait_for_line("ready", ceiling=1)
    assert "did not print /ready/ in 1 s" in str(failed.value)
    assert "--- hung (running) printed:\nstuck" in str(failed.value)
