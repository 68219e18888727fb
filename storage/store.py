"""The hyper-parameter store trading code reads: ``<store>/<model>/<SYMBOL>.json``.

``<store>/best/<SYMBOL>.json`` names the model with the lower validation price MAE.
Every write is atomic: a temporary file in the same folder, fsync, then ``os.replace``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from storage.exceptions import StorageError

BEST = "best"


def record_path(store: Path, model: str, symbol: str) -> Path:
    return Path(store) / model / f"{symbol}.json"


def write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` to ``path`` so readers see the old or the new file, never half of one."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create store folder {path.parent}: {exc.strerror}") from None
    data = json.dumps(payload, indent=2, sort_keys=False) + "\n"
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def read_record(store: Path, model: str, symbol: str) -> dict[str, Any] | None:
    """The stored record of (model, symbol), or ``None`` when there is none."""
    path = record_path(store, model, symbol)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise StorageError(f"{path} is not valid JSON ({exc.msg}); re-run export") from None


def write_record(store: Path, record: dict[str, Any]) -> Path:
    """Write one model's record, then refresh ``best/<SYMBOL>.json``; return the record's path."""
    path = record_path(store, record["model"], record["symbol"])
    write_json_atomic(path, record)
    update_best(store, record["symbol"])
    return path


def update_best(store: Path, symbol: str) -> Path | None:
    """Point ``best/<SYMBOL>.json`` at the model with the lowest validation price MAE."""
    store = Path(store)
    candidates = []
    for folder in sorted(p for p in store.iterdir() if p.is_dir() and p.name != BEST):
        record = read_record(store, folder.name, symbol)
        if record is not None:
            candidates.append(record)
    if not candidates:
        return None
    best = min(candidates, key=lambda r: (r["validation"]["price_mae"], r["model"]))
    path = record_path(store, BEST, symbol)
    write_json_atomic(path, best)
    return path
