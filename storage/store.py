"""The hyper-parameter store trading code reads: ``<store>/<model>/<SYMBOL>.json``.

Layout
    ``<store>/<model>/studies/<study>.json``: every finalised study's own record, always
    written (the name made file-system-safe, :func:`storage.names.study_file_stem`).
    ``<store>/<model>/<SYMBOL>.json``: the *live* record, the one the trading code reads. It
    changes only on purpose (:func:`write_record`). ``<store>/best/<SYMBOL>.json``: a copy of
    the better comparable live record with what ``best/`` adds (:mod:`storage.best`). Files this
    project did not write are *foreign* (:mod:`storage.foreign`): read, shown, and never
    overwritten unless asked, and then kept in ``.replaced/`` beside them.

Writes and locks
    Every file is written atomically with normal permissions, and every read-modify-write holds
    the (store, symbol) lock (:mod:`storage.files`). Every file is read and written as a
    :class:`storage.record.Record` (or recognised as foreign); anything else is unreadable and
    listed as such.
"""

from __future__ import annotations

import datetime
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

from storage import best as choice
from storage.exceptions import StorageError
from storage.files import (
    FILE_MODE,
    LOCKS,
    STORE_HINT,
    check_writable,
    keep_copy,
    put,
    read_old,
    reason,
    serialise,
    symbol_lock,
    write_bytes_atomic,
    write_json_atomic,
)
from storage.foreign import Foreign, Stored, parse
from storage.names import study_file_stem
from storage.record import Record

logger = logging.getLogger(__name__)

BEST = choice.BEST
STUDIES = "studies"

__all__ = [
    "BEST",
    "FILE_MODE",
    "LOCKS",
    "STORE_HINT",
    "STUDIES",
    "Publish",
    "Summary",
    "Written",
    "check_writable",
    "picture_path",
    "read_record",
    "read_stored",
    "record_path",
    "study_record_path",
    "summarise",
    "update_best",
    "write_json_atomic",
    "write_picture",
    "write_record",
]

#: what a "replaces ..." line needs of an overwritten file (see :func:`summarise`)
Summary: TypeAlias = dict[str, str | int | float | None]


@dataclass(frozen=True)
class Publish:
    """What an export may replace besides a record of the same protocol.

    ``promote``: make this study's record live even where the live record is of another task,
    protocol (windows) or metric, or newer (``optimise export --promote``). ``replace_foreign``:
    replace files this project did not write, in ``<model>/`` and ``best/``, keeping a copy in
    ``.replaced/`` (``--replace-foreign``).
    """

    promote: bool = False
    replace_foreign: bool = False
    #: the models whose ``pct_return_mae`` ``best/`` writes as flat keys (``storage.best``)
    flat_models: tuple[str, ...] = ()


@dataclass(frozen=True)
class Written:
    """What :func:`write_record` wrote and what it overwrote.

    ``path`` is the live record's path, ``live`` whether it now holds this record, and
    ``study_path`` the study's own record. ``replaced`` / ``best_replaced`` summarise the
    overwritten live / best file (see :func:`summarise`), or are ``None`` when there was no
    file, it already held exactly the new bytes, or it was not replaced. ``best_path`` is
    ``None`` when no best record could be chosen. ``notes`` are one line each: a file left as it
    is and why, a foreign file replaced and where its copy is, a foreign file seen.
    ``published`` is ``False`` when the caller's guard refused the write: then nothing was
    written and ``notes`` holds the guard's one line.
    """

    path: Path
    replaced: Summary | None
    best_path: Path | None
    best_replaced: Summary | None
    study_path: Path | None = None
    live: bool = True
    notes: tuple[str, ...] = ()
    published: bool = True


def record_path(store: Path, model: str, symbol: str) -> Path:
    """The live record of (model, symbol): the file the trading code reads."""
    return Path(store) / model / f"{symbol}.json"


def study_record_path(store: Path, model: str, study_name: str) -> Path:
    """A study's own record: ``<store>/<model>/studies/<study name, file-system-safe>.json``."""
    return Path(store) / model / STUDIES / f"{study_file_stem(study_name)}.json"


# ---------------------------------------------------------------------------------------------
# Reading and summarising records


def read_stored(store: Path, model: str, symbol: str) -> Stored | None:
    """The file ``<store>/<model>/<SYMBOL>.json``, ours or foreign; ``None`` when there is none."""
    path = record_path(store, model, symbol)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {reason(exc)}") from None
    try:
        return parse(data)
    except StorageError as exc:
        raise StorageError(f"{path}: {exc}; re-run export") from None


def read_record(store: Path, model: str, symbol: str) -> Record | None:
    """The stored record of (model, symbol), or ``None`` when there is none.

    A foreign file is an error here (one line saying whose it is): its settings were not
    scored by this project.
    """
    stored = read_stored(store, model, symbol)
    if isinstance(stored, Foreign):
        if stored.record is not None:
            return stored.record
        path = record_path(store, model, symbol)
        raise StorageError(f"{path}: a {stored.describe()}, not written by optimise")
    return stored


def summarise(data: bytes, model: str | None = None) -> Summary:
    """What a "replaces ..." line needs of a stored file.

    ``{"model", "study_name", "trial_number", "objective", "validation", "validation_<objective>"}``
    where ``validation`` is the validation score on the record's objective; for a foreign file
    ``{"model", "foreign": description}``; for a file that is not a record:
    ``{"model", "unreadable": reason}``.
    """
    try:
        stored = parse(data)
    except StorageError as exc:
        return {"model": model, "unreadable": str(exc)}
    return choice.describe(stored)


def _summary(path: Path, old: bytes | None | OSError) -> Summary | None:
    if old is None:
        return None
    if isinstance(old, OSError):
        return {"model": path.parent.name, "unreadable": reason(old)}
    return summarise(old, model=path.parent.name)


def _stored(old: bytes | None | OSError) -> Stored | None:
    """The parsed old file; ``None`` for no file or an unreadable one (which may be healed)."""
    if old is None or isinstance(old, OSError):
        return None
    try:
        return parse(old)
    except StorageError:
        return None


def _stamp() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")


def _replace(
    path: Path, data: bytes, old: bytes | None | OSError
) -> tuple[Summary | None, str | None]:
    """Write ``data`` over ``path``; a foreign old file is first copied to ``.replaced/``.

    Returns the summary of what was overwritten and, for a foreign file, the line naming it
    and its copy. Caller holds the lock.
    """
    was = _stored(old)
    note = None
    if isinstance(was, Foreign) and isinstance(old, bytes) and old != data:
        copy = keep_copy(path, old, _stamp())
        note = f"{path}: replaced the {was.describe()}; kept a copy at {copy}"
    written = put(path, data, old)
    return (_summary(path, old) if written else None), note


# ---------------------------------------------------------------------------------------------
# The live record


def live_verdict(new: Record, current: Stored | None, publish: Publish) -> str | None:
    """Why ``new`` may *not* become the live record over ``current`` (``None``: it may).

    It may where there is no readable live record, where the live record is of the same task,
    windows and metric and not newer (a re-export, more trials, a refresh to newer bars), and
    with ``promote`` over any record of ours. A foreign live record needs ``replace_foreign``.
    """
    if current is None:
        return None
    if isinstance(current, Foreign):
        if publish.replace_foreign:
            return None
        return f"{current.describe()} left as it is; pass --replace-foreign to replace it"
    if publish.promote or choice.same_winner(new, current):
        return None
    differs = _protocol_difference(new, current)
    if differs is None and choice.newer_or_same(new, current):
        return None
    why = differs or f"it is newer ({current.metadata.created_at})"
    return (
        f"kept the live record of study {current.metadata.study_name} trial "
        f"{current.metadata.trial_number} ({why}); `optimise export --promote` makes this "
        f"study's record live"
    )


def _protocol_difference(new: Record, live: Record) -> str | None:
    """How ``new`` differs from the live record in task, windows or metric (``None``: not)."""

    reasons = []
    if new.windows.key() != live.windows.key():
        reasons.append(f"windows {live.windows.tag()}, this study's {new.windows.tag()}")
    if choice.task_key(new) != choice.task_key(live):
        reasons.append(f"task {_task_text(live)}, this study's {_task_text(new)}")
    if new.objective != live.objective:
        reasons.append(f"metric {live.objective}, this study's {new.objective}")
    return "; ".join(reasons) or None


def _task_text(record: Record) -> str:
    name, columns, path_score = choice.task_key(record)
    return f"{name}[{','.join(columns)}]" + ("" if path_score == "mean" else f" {path_score}")


# ---------------------------------------------------------------------------------------------
# The best record


def _model_records(store: Path, symbol: str) -> list[choice.Entry]:
    """Every model folder's file of ``symbol``, sorted by model; unreadable ones with their
    error. Dot-folders and ``best/`` are not model folders."""
    try:
        folders = sorted(
            p
            for p in store.iterdir()
            if p.name != BEST and not p.name.startswith(".") and p.is_dir()
        )
    except OSError as exc:
        raise StorageError(f"cannot list store folder {store}: {reason(exc)}") from None
    entries = []
    for folder in folders:
        path = folder / f"{symbol}.json"
        try:
            entries.append(choice.Entry.of(folder.name, parse(path.read_bytes())))
        except FileNotFoundError:
            continue
        except (OSError, StorageError) as exc:
            error = reason(exc)
            logger.warning("best/%s.json: skipping unreadable %s (%s)", symbol, path, error)
            entries.append(choice.Entry(folder.name, error=error))
    return entries


def _refresh_best(
    store: Path, symbol: str, replace_foreign: bool, label: str, flat_models: tuple[str, ...]
) -> tuple[Path | None, Summary | None, list[str]]:
    """Recompute ``best/<SYMBOL>.json`` from the live model records; caller holds the lock."""
    entries = _model_records(store, symbol)
    notes = [
        f"{record_path(store, e.model, symbol)}: {e.foreign.describe()}, left as it is"
        for e in entries
        if e.foreign is not None
    ]
    best = choice.choose(entries, label, flat_models)
    path = record_path(store, BEST, symbol)
    old = read_old(path)
    if best is None:
        if entries:
            logger.warning("best/%s.json left as it is: no usable model record", symbol)
        current = _stored(old)
        if isinstance(current, Foreign):
            notes.append(f"{path}: {current.describe()}, left as it is")
        return None, None, notes
    data = serialise(best.to_json())
    why = choice.displaces(best, _stored(old), replace_foreign=replace_foreign)
    if why is not None:
        return path, None, [*notes, f"{path}: {why}"]
    replaced, note = _replace(path, data, old)
    return path, replaced, [*notes, *([note] if note else [])]


def update_best(
    store: Path,
    symbol: str,
    *,
    replace_foreign: bool = False,
    flat_models: tuple[str, ...] = (),
) -> Path | None:
    """Rewrite ``best/<SYMBOL>.json`` from the live model records (see :mod:`storage.best`;
    ``flat_models`` as :attr:`Publish.flat_models`).

    Returns its path, or ``None`` when there is no usable record of ``symbol`` (then an
    existing best file is left alone). Idempotent: an unchanged best file is not rewritten.
    """
    store = Path(store)
    if not store.exists():
        return None
    if not store.is_dir():
        raise StorageError(f"store path {store} is a file, not a folder; {STORE_HINT}")
    with symbol_lock(store, symbol):
        path, _, _ = _refresh_best(store, symbol, replace_foreign, str(store), flat_models)
    return path


# ---------------------------------------------------------------------------------------------
# Public writes


def _name(record: Record, key: str) -> str:
    value: str = getattr(record, key)
    if (
        not value
        or value.startswith(".")
        or "/" in value
        or "\0" in value
        or (os.sep != "/" and os.sep in value)
    ):
        raise StorageError(f"record {key} {value!r} cannot name a store file")
    if key == "model" and value == BEST:
        raise StorageError(f"record model cannot be {BEST!r}: that folder holds the best records")
    return value


def write_record(
    store: Path,
    record: Record,
    publish: Publish | None = None,
    guard: Callable[[], str | None] | None = None,
) -> Written:
    """Write a finalised study's record, under the symbol lock.

    Always writes the study's own record (:func:`study_record_path`); writes the live record
    ``<model>/<SYMBOL>.json`` where :func:`live_verdict` allows it; then recomputes
    ``best/<SYMBOL>.json``. A file whose bytes equal the new ones is not rewritten.

    ``guard``, called under the lock before anything is written, may refuse the whole write
    with a one-line reason (finalisation's compare-and-set of the published round, so that a
    late finaliser of an older round never writes over a newer one): then nothing is written.
    """
    publish = publish or Publish()
    store = Path(store)
    model, symbol = _name(record, "model"), _name(record, "symbol")
    path = record_path(store, model, symbol)
    study_path = study_record_path(store, model, record.metadata.study_name)
    data = serialise(record.to_json())
    notes: list[str] = []
    with symbol_lock(store, symbol):
        refused = guard() if guard is not None else None
        if refused is not None:
            return Written(path, None, None, None, study_path, False, (refused,), False)
        put(study_path, data, read_old(study_path))
        old = read_old(path)
        why = live_verdict(record, _stored(old), publish)
        replaced = None
        if why is None:
            replaced, note = _replace(path, data, old)
            notes += [note] if note else []
        else:
            notes.append(f"{path}: {why}; this study's record: {study_path}")
        best_path, best_replaced, best_notes = _refresh_best(
            store, symbol, publish.replace_foreign, str(store), publish.flat_models
        )
        if why is not None:  # the live file is named once
            best_notes = [n for n in best_notes if not n.startswith(f"{path}:")]
    return Written(
        path, replaced, best_path, best_replaced, study_path, why is None, (*notes, *best_notes)
    )


def picture_path(store: Path, model: str, symbol: str) -> Path:
    """The PNG of a model's live winner, beside its record: ``<store>/<model>/<SYMBOL>.png``."""
    return Path(store) / model / f"{symbol}.png"


def write_picture(
    store: Path, model: str, symbol: str, png: bytes, study_name: str | None = None
) -> Path:
    """Write a winner's picture atomically (unchanged bytes are not rewritten): beside the live
    record, or with ``study_name`` beside that study's own record."""
    if study_name is None:
        path = picture_path(store, model, symbol)
    else:
        path = study_record_path(store, model, study_name).with_suffix(".png")
    with symbol_lock(Path(store), symbol):
        if not (path.exists() and path.read_bytes() == png):
            write_bytes_atomic(path, png)
    return path
