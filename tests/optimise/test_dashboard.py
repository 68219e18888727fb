"""``optimise dashboard``: read-only mode refuses write routes; bind warnings and errors."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import optuna

from optimise.dashboard import is_loopback, read_only
from tests.conftest import cli_command, cli_env
from tests.processes import CEILING_S, Child


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def request(url: str, method: str = "GET") -> tuple[int, bytes]:
    try:
        asked = urllib.request.Request(url, method=method)
        with urllib.request.urlopen(asked, timeout=CEILING_S) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_read_only_dashboard_refuses_delete_and_keeps_the_study(workdir: Path) -> None:
    optuna.create_study(study_name="keep", storage="sqlite:///studies.db")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with Child(cli_command("dashboard", "--read-only", "--port", port), env=cli_env()) as proc:
        proc.wait_for_line(rf"on {re.escape(base)}/dashboard \(read-only\)")  # once bound
        status, body = request(f"{base}/api/studies")
        assert status == 200 and b"keep" in body
        status, page = request(f"{base}/dashboard/")  # the page hides what it refuses
        assert status == 200 and b'<style id="optimise-read-only">' in page
        study_id = json.loads(body)["study_summaries"][0]["study_id"]
        status, body = request(f"{base}/api/studies/{study_id}", "DELETE")
        assert status == 403 and b"read-only" in body
        status, _ = request(f"{base}/api/studies/{study_id}/note", "PUT")
        assert status == 403
        assert proc.stop() == 0, proc.describe()  # SIGTERM shuts the server down cleanly
    assert [s.study_name for s in optuna.get_all_study_summaries("sqlite:///studies.db")] == [
        "keep"
    ]


def test_a_port_in_use_is_one_line_and_exit_code_2(workdir: Path) -> None:
    optuna.create_study(study_name="s", storage="sqlite:///studies.db")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            cli_command("dashboard", "--port", port), env=cli_env(), capture_output=True,
            text=True, timeout=CEILING_S,
        )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("error: cannot serve the dashboard on 127.0.0.1:")
    assert "serves" not in result.stdout and "on http" not in result.stdout


def test_write_methods_never_reach_the_wrapped_app() -> None:
    reached = []

    def app(environ, start_response):
        reached.append(environ["REQUEST_METHOD"])
        start_response("200 OK", [])
        return [b"ok"]

    guarded = read_only(app)
    statuses = []
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
        list(guarded({"REQUEST_METHOD": method}, lambda s, h: statuses.append(s)))
    assert reached == ["GET", "HEAD"]
    assert statuses[2:] == ["403 Forbidden"] * 4


def test_loopback_hosts_are_told_apart_from_public_ones() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("::")
