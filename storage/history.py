"""Earlier periods' records: ``<store>/<model>/history/<SYMBOL>/<period>.json``.

When bars are appended to a symbol's data, ``optimise launch`` starts the next period's study
(:mod:`studies.refresh`); before that study's record replaces the live one, the previous
period's record is copied here, named after its period (the date of its last validation
target, :func:`period_tag`). The trading code reads the live record only; these files are for
people comparing periods. Written atomically (:func:`storage.store.write_json_atomic`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from storage.exceptions import StorageError
from storage.record import Record
from storage.store import write_json_atomic

HISTORY = "history"


def period_tag(iso: str) -> str:
    """A period's tag from its last validation target's time (``metadata.validation_end``,
    ``2013-02-01T00:00:00Z``): the date for daily bars (``2013-02-01``), else the date and
    time without separators a file name or study name could trip on (``2013-02-01T093000``)."""
    text = iso.removesuffix("Z")
    date, _, time = text.partition("T")
    time = time.replace(":", "")
    return date if time.strip("0") == "" else f"{date}T{time}"


def history_path(store: Path, model: str, symbol: str, period: str) -> Path:
    return Path(store) / model / HISTORY / symbol / f"{period}.json"


def keep_previous_record(store: Path, study_name: str, sources: Iterable[Path]) -> Path | None:
    """Copy the record of ``study_name`` into the history folder; return where it now lies.

    ``sources`` are the files that may hold it, in order (the live record first); the first
    one that is a record of that study is kept under its own period. ``None`` when none is
    (the study was never exported). An identical history file is left as it is.
    """
    for source in sources:
        try:
            data = Path(source).read_bytes()
            record = Record.from_json(data)
        except (OSError, StorageError):
            continue
        if record.metadata.study_name != study_name:
            continue
        meta = record.metadata
        period = period_tag(meta.validation_end or meta.created_at)  # old records lack the end
        path = history_path(store, record.model, record.symbol, period)
        try:
            unchanged = path.read_bytes() == data
        except OSError:
            unchanged = False
        if not unchanged:
            write_json_atomic(path, json.loads(data))
        return path
    return None


def history_periods(store: Path, model: str, symbol: str) -> list[str]:
    """The periods kept for (model, symbol), oldest first."""
    folder = Path(store) / model / HISTORY / symbol
    try:
        return sorted(p.stem for p in folder.glob("*.json") if p.is_file())
    except OSError:
        return []
