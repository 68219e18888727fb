"""Store files this project did not write, read as the trading code reads them.

The trading code's own tooling writes records into the same layout
(``<root>/<model>/<SYMBOL>.json``, ``<root>/best/<SYMBOL>.json``) with its own keys: no study,
trial or creation time, extra keys such as ``config_path``, ``metadata.selection_metric`` or
``metadata.extended_path``, and often ``pct_return_mae`` without ``return_mae``
(``../shared/CONSUMER.md``). Its loader needs only ``config``, ``validation`` and ``test``.
Such a file is *foreign*: it is read (never listed as unreadable), shown as foreign, compared
only when comparable, and never overwritten unless asked.

Which files are ours: a file whose ``metadata.source`` is :data:`SOURCE`, or that has no source
but names a study (``metadata.study_name``: records of versions before ``source`` existed). Any
other JSON object with the trading code's required keys is foreign; the rest is unreadable.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from storage.exceptions import StorageError
from storage.record import JSONValue, Record, Windows

#: ``metadata.source`` of every record this project exports
SOURCE = "optimise (optuna)"
#: what the trading code's ``HyperparamRecord.from_payload`` cannot do without
TRADING_KEYS = ("config", "validation", "test")


@dataclass(frozen=True)
class Foreign:
    """A record another program wrote: what the trading code and a reader of ours need of it.

    ``record`` is set when the file also parses as a :class:`Record` (written in our schema by
    someone else); it is then compared like any record when comparable. ``windows`` is ``None``
    when the file's windows are missing or malformed.
    """

    model: str | None
    symbol: str | None
    source: str | None
    config_name: str | None
    windows: Windows | None
    validation: Mapping[str, JSONValue] = field(default_factory=dict)
    record: Record | None = None

    def describe(self) -> str:
        """``foreign record (source update_best_configs_by_return_mae, model toto, config
        toto_opt_mean_4096_spb512)``: enough to recognise the file."""
        parts = [f"source {self.source or 'unknown'}"]
        if self.model:
            parts.append(f"model {self.model}")
        if self.config_name:
            parts.append(f"config {self.config_name}")
        return f"foreign record ({', '.join(parts)})"

    def value(self, metric: str) -> float | None:
        """Its validation value of ``metric`` (``pct_return_mae`` standing for ``return_mae``)."""
        if self.record is not None:
            return self.record.validation.metric(metric)
        for key in (metric, "pct_return_mae") if metric == "return_mae" else (metric,):
            found = self.validation.get(key)
            if isinstance(found, (int, float)) and not isinstance(found, bool):
                return float(found)
        return None


Stored = Record | Foreign


def is_ours(payload: Mapping[str, object]) -> bool:
    """Whether a parsed file claims to be one of this project's records (see module doc)."""
    metadata = payload.get("metadata")
    if not isinstance(metadata, Mapping):
        return False
    source = metadata.get("source")
    if source is None:
        return "study_name" in metadata
    return source == SOURCE


def parse(data: bytes | str) -> Stored:
    """A store file's record, ours or foreign; :class:`StorageError` (one line) if it is neither.

    A file that claims to be ours is held to the schema (:meth:`Record.from_json`), so a damaged
    record of ours stays unreadable rather than becoming "foreign".
    """
    try:
        payload = json.loads(data)
    except ValueError:
        return Record.from_json(data)  # raises the one-line "not valid JSON (...)"
    if not isinstance(payload, Mapping) or is_ours(payload):
        return Record.from_json(payload)
    missing = [key for key in TRADING_KEYS if not isinstance(payload.get(key), Mapping)]
    if missing:
        raise StorageError(
            f"not a record: no {missing[0]} object (the trading code's loader needs "
            f"{', '.join(TRADING_KEYS)})"
        )
    return _foreign(payload)


def _foreign(payload: Mapping[str, object]) -> Foreign:
    metadata = payload.get("metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    config = payload["config"]
    assert isinstance(config, Mapping)
    try:
        record: Record | None = Record.from_json(payload)
    except StorageError:
        record = None
    try:
        windows: Windows | None = Windows.parse(payload.get("windows"), "windows")
    except StorageError:
        windows = None
    validation = payload["validation"]
    assert isinstance(validation, Mapping)
    return Foreign(
        model=_text(payload.get("model")),
        symbol=_text(payload.get("symbol")),
        source=_text(metadata.get("source")),
        config_name=_text(config.get("name")),
        windows=windows,
        validation={str(k): v for k, v in validation.items()},
        record=record,
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
