"""A read-only dashboard's pages carry the stylesheet that hides the controls it refuses;
its other responses are untouched."""

from __future__ import annotations

import io
from wsgiref.util import setup_testing_defaults

import optuna
from optuna_dashboard import wsgi

from optimise.dashboard import read_only
from optimise.dashboard_style import HIDDEN_ICONS, STYLESHEET, hide_write_controls


def call(app, path: str, **headers: str) -> tuple[str, dict[str, str], bytes]:
    environ = {"PATH_INFO": path, "HTTP_ACCEPT_ENCODING": "identity", **headers}
    setup_testing_defaults(environ)
    environ["wsgi.input"] = io.BytesIO()
    said: dict = {}

    def start_response(status: str, headers: list, exc_info: object = None) -> None:
        said.update(status=status, headers=dict(headers))

    body = b"".join(app(environ, start_response))
    return said["status"], said["headers"], body


def test_the_page_hides_the_write_controls_and_says_read_only() -> None:
    storage = optuna.storages.InMemoryStorage()
    optuna.create_study(study_name="s", storage=storage)
    app = read_only(hide_write_controls(wsgi(storage)))
    plain = wsgi(storage)
    _, _, original = call(plain, "/dashboard/")
    status, headers, page = call(app, "/dashboard/studies/1", HTTP_IF_NONE_MATCH="*")
    assert status.startswith("200")  # not a 304 to the browser's unstyled copy
    assert page == original.replace(b"</head>", STYLESHEET + b"</head>", 1) != original
    assert headers["Content-Length"] == str(len(page)) and "ETag" not in headers
    for icon in HIDDEN_ICONS:
        assert f'button:has(svg[data-testid="{icon}"])'.encode() in page
    assert b".MuiCard-root:has(svg" not in page  # a card holding a delete button stays
    assert b"read-only: writes are refused" in page
    status, headers, body = call(app, "/api/studies")  # JSON: as the dashboard sent it
    assert status.startswith("200") and body == call(plain, "/api/studies")[2]
    assert STYLESHEET not in body and headers["Content-Type"].startswith("application/json")
