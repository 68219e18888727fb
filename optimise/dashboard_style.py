"""Read-only dashboards hide the controls whose requests they refuse.

optuna-dashboard has no read-only mode of its own: its page is one React bundle whose buttons
carry no stable ids. Their Material icons do (``data-testid="DeleteIcon"``), so a stylesheet
added to the served HTML hides each button, menu item or card holding one of
:data:`HIDDEN_ICONS` (create, rename and delete a study, edit a note, upload an artifact), and a
badge says the page is read-only. Controls drawn without one of these icons (telling a running
trial its state, deleting an artifact from its menu) stay visible; their requests get the
``403`` of :func:`optimise.dashboard.read_only`. Only HTML responses are touched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

#: the icons of the write controls: create study, delete, rename study, edit note, upload
HIDDEN_ICONS = (
    "AddBoxIcon",
    "DeleteIcon",
    "DriveFileRenameOutlineIcon",
    "EditIcon",
    "UploadFileIcon",
)
#: the nearest holders of such an icon: a button or menu item; the artifact upload's card
SELECTORS = (
    *(f'button:has(svg[data-testid="{icon}"])' for icon in HIDDEN_ICONS),
    *(f'li[role=menuitem]:has(svg[data-testid="{icon}"])' for icon in HIDDEN_ICONS),
    '.MuiCard-root:has(> .MuiCardActionArea-root svg[data-testid="UploadFileIcon"])',
)
STYLESHEET = (
    '<style id="optimise-read-only">' + ", ".join(SELECTORS) + " { display: none !important; }"
    ' body::after { content: "read-only: writes are refused"; position: fixed; right: 12px;'
    " bottom: 8px; padding: 2px 8px; font: 12px sans-serif; color: #555; background: #eee;"
    " border-radius: 4px; z-index: 2000; }"
    "</style>"
).encode()
#: request headers that could answer the page with ``304`` (the browser's unstyled copy)
_CONDITIONAL = ("HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE")
#: response headers that no longer describe the styled page
_STALE = frozenset({"content-length", "etag", "last-modified"})


def inject(html: bytes) -> bytes:
    """``html`` with :data:`STYLESHEET` before its ``</head>`` (unchanged without one)."""
    return html.replace(b"</head>", STYLESHEET + b"</head>", 1)


def hide_write_controls(app: WsgiApp) -> WsgiApp:
    """Wrap a WSGI app so that its HTML pages carry :data:`STYLESHEET`."""

    def styled(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        environ = {k: v for k, v in environ.items() if k not in _CONDITIONAL}
        said: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            said.update(status=status, headers=headers, exc_info=exc_info)
            return lambda data: None  # the legacy write() callable; the dashboard never calls it

        body = app(environ, capture)
        if "status" not in said:  # an app that starts the response on the first item
            body = list(body)
        headers = said["headers"]
        kind = next((v for k, v in headers if k.lower() == "content-type"), "")
        if not kind.startswith("text/html"):
            start_response(said["status"], headers, said["exc_info"])
            return body
        try:
            page = inject(b"".join(body))
        finally:
            if hasattr(body, "close"):
                body.close()
        kept = [(k, v) for k, v in headers if k.lower() not in _STALE]
        if environ.get("REQUEST_METHOD", "GET").upper() != "HEAD":
            kept.append(("Content-Length", str(len(page))))
        start_response(said["status"], kept, said["exc_info"])
        return [page]

    return styled
