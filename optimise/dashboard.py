"""``optimise dashboard``: optuna-dashboard on the studies' database, optionally read-only.

optuna-dashboard's write routes (delete a study, tell a trial, edit notes and attrs, upload or
delete artifacts, migrate the schema) all use POST, PUT, PATCH or DELETE; its reads are GET.
Read-only mode answers every other method with ``403`` before the dashboard sees it, so a
dashboard shared beyond this machine cannot delete a study a worker is running, and hides the
controls it refuses (:mod:`optimise.dashboard_style`).
"""

from __future__ import annotations

import ipaddress
import json
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from optimise.dashboard_style import hide_write_controls
from storage.exceptions import StorageError
from storage.listing import all_studies
from studies.attrs import StudyAttrs

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def read_only(app: WsgiApp) -> WsgiApp:
    """Wrap a WSGI app so that only GET, HEAD and OPTIONS reach it."""

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD", "GET").upper() in READ_METHODS:
            return app(environ, start_response)
        body = json.dumps(
            {"reason": "this dashboard is read-only (optimise dashboard --read-only)"}
        ).encode()
        start_response(
            "403 Forbidden",
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
        )
        return [body]

    return guarded


def is_loopback(host: str) -> bool:
    """``True`` when ``host`` binds to this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(
                ipaddress.ip_address(info[4][0]).is_loopback
                for info in socket.getaddrinfo(host, None)
            )
        except OSError:
            return False


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass


def artifact_store(storage: Any, folder: str | None) -> Any:
    """The artifact store of the winners' pictures: ``folder``, else the one the studies
    recorded (``<store>/.artifacts``), else none."""
    from optuna.artifacts import FileSystemArtifactStore

    if folder is None:
        for summary in all_studies(storage):
            recorded = StudyAttrs.of(summary).artifact_store
            if recorded and Path(recorded).is_dir():
                folder = recorded
                break
    return None if folder is None else FileSystemArtifactStore(str(folder))


def serve(
    storage: Any, host: str, port: int, *, readonly: bool, banner: str, artifacts: str | None
) -> None:
    """Bind, print ``banner``, serve until interrupted; a bind failure is one user error."""
    from optuna_dashboard import wsgi

    if not is_loopback(host):
        print(
            f"warning: binding {host} exposes the dashboard beyond this machine"
            + ("" if readonly else "; its write routes (delete study, tell, notes) are open: "
               "add --read-only"),
            file=sys.stderr,
        )  # fmt: skip
    app = wsgi(storage, artifact_store=artifact_store(storage, artifacts))
    try:
        server: WSGIServer = make_server(
            host,
            port,
            read_only(hide_write_controls(app)) if readonly else app,
            handler_class=_QuietHandler,
        )
    except OSError as exc:
        raise StorageError(
            f"cannot serve the dashboard on {host}:{port} ({exc.strerror or exc}); "
            "pass --port with a free port"
        ) from None

    def stop(_signum: int, _frame: object) -> None:  # shutdown() waits for serve_forever
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    print(banner + (" (read-only)" if readonly else ""))
    print("Ctrl-C to stop", flush=True)
    with server:
        server.serve_forever()
    print("dashboard stopped", flush=True)
