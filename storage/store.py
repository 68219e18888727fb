"""The hyper-parameter store trading code reads: ``<store>/<model>/<SYMBOL>.json``.

``<store>/best/<SYMBOL>.json`` is a copy of the better model's record, chosen among comparable
records only (see :func:`update_best`), with ``metadata.best_selection`` saying what was compared
and why the other records were not. Every file is read and written as a
:class:`storage.record.Record`; a file that is not one is unreadable (and listed as such).

Writes
    Every write is atomic: a temporary file in the same folder, fsync, ``os.replace``, then a
    best-effort fsync of the folder. A write whose bytes equal the stored file is skipped (the
    mtime stays). Any ``OSError`` becomes a one-line :class:`StorageError` naming the path.

Permissions
    The temporary file is created with ``os.open(..., 0o666)``, so the kernel applies the umask
    (and any default ACL) exactly as for a normal new file: ``0o644`` under umask 022, ``0o640``
    under 027. No process-wide umask juggling is needed for that. When a file is replaced, its
    new mode is that default *plus* the bits the old file had (``default | old & 0o666``): a
    manual ``chmod 644`` survives the next export even under umask 027, and files left ``0o600``
    by older versions are widened back to the default (also when an identical re-export skips the
    rewrite; that case reads the umask from ``/proc/self/status``, see :func:`_umask`).

Locking
    :func:`write_record` and :func:`update_best` hold an exclusive lock per (store, symbol)
    across the whole read-modify-write: ``fcntl.flock`` on ``<store>/.locks/<SYMBOL>.lock``
    (between processes; each call opens its own file description, so on local file systems it
    also excludes threads) plus a per-lock-file ``threading.Lock`` (for threads, also where
    flock is emulated with per-process POSIX locks, e.g. NFS). Dot-folders such as ``.locks``
    are never model folders.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import logging
import math
import os
import secrets
import stat
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

from storage.exceptions import StorageError
from storage.record import BestSelection, Compared, Excluded, JSONValue, Record, Windows

logger = logging.getLogger(__name__)

BEST = "best"
LOCKS = ".locks"
FILE_MODE = 0o666
STORE_HINT = "pass --store DIR"

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_OLDEST = datetime.datetime.min.replace(tzinfo=datetime.UTC)

#: what a "replaces ..." line needs of an overwritten file (see :func:`summarise`)
Summary: TypeAlias = dict[str, str | int | float | None]


@dataclass(frozen=True)
class Written:
    """What :func:`write_record` wrote and what it overwrote.

    ``replaced`` / ``best_replaced`` summarise the overwritten file (see :func:`summarise`), or
    are ``None`` when there was no file or it already held exactly the new bytes. ``best_path``
    is ``None`` when no best record could be chosen (every model record unreadable).
    """

    path: Path
    replaced: Summary | None
    best_path: Path | None
    best_replaced: Summary | None


def record_path(store: Path, model: str, symbol: str) -> Path:
    return Path(store) / model / f"{symbol}.json"


# ---------------------------------------------------------------------------------------------
# Atomic writes


def _reason(exc: BaseException) -> str:
    """A one-line reason: the OS error text without the path repeated."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _serialise(payload: Mapping[str, JSONValue]) -> bytes:
    return (json.dumps(payload, indent=2, sort_keys=False) + "\n").encode()


def _open_temp(path: Path) -> tuple[Path, int]:
    """A new, empty ``.<name>.<random>.tmp`` beside ``path``, mode ``0o666 & ~umask``."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC
    for _ in range(100):
        temp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            return temp, os.open(temp, flags, FILE_MODE)
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path}")


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable; best effort (not every file system allows it)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_bytes_atomic(path: Path, data: bytes) -> None:
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)  # mode 0o777 & ~umask, like mkdir(1)
    except OSError as exc:
        raise StorageError(f"cannot create store folder {folder}: {_reason(exc)}") from None
    try:
        old_mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        old_mode = 0
    try:
        temp, fd = _open_temp(path)
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {_reason(exc)}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            created = stat.S_IMODE(os.fstat(handle.fileno()).st_mode)
            wanted = created | (old_mode & FILE_MODE)
            if wanted != created:
                os.fchmod(handle.fileno(), wanted)
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        if isinstance(exc, OSError):
            raise StorageError(f"cannot write {path}: {_reason(exc)}") from None
        raise
    _fsync_folder(folder)


def write_json_atomic(path: Path, payload: Mapping[str, JSONValue]) -> None:
    """Write ``payload`` to ``path`` so readers see the old or the new file, never half of one."""
    _write_bytes_atomic(Path(path), _serialise(payload))


_umask_guard = threading.Lock()


def _umask() -> int:
    """The process umask without changing it where possible.

    Linux reports it in ``/proc/self/status`` (since 4.7), which is thread-safe. Elsewhere the
    classic ``os.umask`` read-and-restore is used under a lock; it sets 022 (not 0) for that
    instant, so a file another thread creates right then is at worst 0644, never world-writable.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _umask_guard:
        old = os.umask(0o022)
        os.umask(old)
    return old


def _widen_mode(path: Path) -> None:
    """Give an unchanged file at least the default mode (heals 0600 files); best effort."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        wanted = mode | (FILE_MODE & ~_umask())
        if wanted != mode:
            os.chmod(path, wanted)
    except OSError as exc:
        logger.debug("cannot widen the mode of %s: %s", path, _reason(exc))


def _put(path: Path, data: bytes) -> Summary | None:
    """Write ``data`` unless ``path`` already holds exactly it; summarise what was replaced."""
    try:
        old = path.read_bytes()
    except FileNotFoundError:
        old = None
    except OSError as exc:
        _write_bytes_atomic(path, data)  # raises StorageError if the folder is unwritable too
        return {"model": path.parent.name, "unreadable": _reason(exc)}
    if old == data:
        _widen_mode(path)
        return None
    _write_bytes_atomic(path, data)
    return None if old is None else summarise(old, model=path.parent.name)


# ---------------------------------------------------------------------------------------------
# Reading and summarising records


def read_record(store: Path, model: str, symbol: str) -> Record | None:
    """The stored record of (model, symbol), or ``None`` when there is none."""
    path = record_path(store, model, symbol)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {_reason(exc)}") from None
    try:
        return Record.from_json(data)
    except StorageError as exc:
        raise StorageError(f"{path}: {exc}; re-run export") from None


def summarise(data: bytes, model: str | None = None) -> Summary:
    """What a "replaces ..." line needs of a stored file.

    ``{"model", "study_name", "trial_number", "objective", "validation", "validation_<objective>"}``
    where ``validation`` is the validation score on the record's objective; for a file that is
    not a record: ``{"model", "unreadable": reason}``.
    """
    try:
        record = Record.from_json(data)
    except StorageError as exc:
        return {"model": model, "unreadable": str(exc)}
    objective = record.objective
    value = record.validation.metric(objective)
    return {
        "model": record.model,
        "study_name": record.metadata.study_name,
        "trial_number": record.metadata.trial_number,
        "objective": objective,
        "validation": value,
        f"validation_{objective}": value,
    }


# ---------------------------------------------------------------------------------------------
# Locking


_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


@contextlib.contextmanager
def _symbol_lock(store: Path, symbol: str) -> Iterator[None]:
    """Exclusive (store, symbol) lock between threads and processes, released on exit/death."""
    folder = store / LOCKS
    lock_path = folder / f"{symbol}.lock"
    key = os.path.abspath(lock_path)
    with _thread_locks_guard:
        thread_lock = _thread_locks.setdefault(key, threading.Lock())
    with thread_lock:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            # Read-only is enough for flock, so a lock file another user created still works.
            fd = os.open(lock_path, os.O_RDONLY | os.O_CREAT | _CLOEXEC, FILE_MODE)
        except OSError as exc:
            raise StorageError(f"cannot create lock file {lock_path}: {_reason(exc)}") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # Python retries on EINTR
            except OSError as exc:
                raise StorageError(f"cannot lock {lock_path}: {_reason(exc)}") from None
            yield
        finally:
            os.close(fd)  # releases the flock


# ---------------------------------------------------------------------------------------------
# The best record


@dataclass(frozen=True)
class _Entry:
    model: str
    record: Record | None
    error: str | None = None


def _model_records(store: Path, symbol: str) -> list[_Entry]:
    """Every model's record of ``symbol``, sorted by model; unreadable ones with their error."""
    try:
        folders = sorted(
            p
            for p in store.iterdir()
            if p.name != BEST and not p.name.startswith(".") and p.is_dir()
        )
    except OSError as exc:
        raise StorageError(f"cannot list store folder {store}: {_reason(exc)}") from None
    entries = []
    for folder in folders:
        path = folder / f"{symbol}.json"
        try:
            entries.append(_Entry(folder.name, Record.from_json(path.read_bytes())))
        except FileNotFoundError:
            continue
        except (OSError, StorageError) as exc:
            error = _reason(exc)
            logger.warning("best/%s.json: skipping unreadable %s (%s)", symbol, path, error)
            entries.append(_Entry(folder.name, None, error))
    return entries


def _created_at(entry: _Entry) -> datetime.datetime:
    assert entry.record is not None
    try:
        stamp = datetime.datetime.fromisoformat(entry.record.metadata.created_at)
    except ValueError:
        return _OLDEST
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=datetime.UTC)


def _windows_text(windows: Windows, other: Windows) -> str:
    text = f"v{windows.val_window}-t{windows.test_window}"
    if windows.forecast_horizon != other.forecast_horizon:
        text += f"-h{windows.forecast_horizon}"
    return text


def _incomparable(record: Record, anchor: Record) -> str | None:
    """Why ``record`` cannot be compared with ``anchor`` (``None`` if it can)."""
    reasons = []
    if record.windows != anchor.windows:
        mine = _windows_text(record.windows, anchor.windows)
        theirs = _windows_text(anchor.windows, record.windows)
        reasons.append(f"different windows ({mine} vs {theirs})")
    fingerprint = record.metadata.data_fingerprint
    anchor_fingerprint = anchor.metadata.data_fingerprint
    if fingerprint is None or anchor_fingerprint is None:
        reasons.append("different data fingerprint (unknown)")
    elif fingerprint != anchor_fingerprint:
        reasons.append("different data fingerprint")
    if record.objective != anchor.objective:
        reasons.append(f"different objective ({record.objective} vs {anchor.objective})")
    return "; ".join(reasons) or None


def _score(record: Record, objective: str) -> float | None:
    value = record.validation.metric(objective)
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def _choose_best(entries: list[_Entry]) -> Record | None:
    """The best record (with ``metadata.best_selection``) among comparable model records.

    The anchor is the readable record with the latest ``metadata.created_at`` (ties: model
    name). Records comparable with it (same data fingerprint, both known; same windows; same
    objective) compete on the validation score of that objective, lowest wins (ties: model
    name). Every other record is listed under ``excluded`` with the reason.
    """
    readable = [e for e in entries if e.record is not None]
    if not readable:
        return None
    anchor = max(sorted(readable, key=lambda e: e.model), key=_created_at)
    assert anchor.record is not None
    objective = anchor.record.objective
    candidates: list[tuple[float, _Entry, Record]] = []
    excluded = []
    for entry in sorted(entries, key=lambda e: e.model):
        if entry.record is None:
            reason = f"unreadable: {entry.error}"
            excluded.append(Excluded(model=entry.model, study_name=None, reason=reason))
            continue
        reason = None if entry is anchor else _incomparable(entry.record, anchor.record)
        score = _score(entry.record, objective)
        if reason is None and score is None:
            reason = f"no finite validation {objective}"
        if reason is not None:
            name = entry.record.metadata.study_name
            excluded.append(Excluded(model=entry.model, study_name=name, reason=reason))
        else:
            assert score is not None
            candidates.append((score, entry, entry.record))
    if not candidates:
        return None
    compared = tuple(
        Compared(
            model=entry.model,
            study_name=record.metadata.study_name,
            trial_number=record.metadata.trial_number,
            validation=score,
        )
        for score, entry, record in candidates
    )
    _, _, best = min(candidates, key=lambda c: (c[0], c[1].model))
    selection = BestSelection(
        anchor=anchor.model, objective=objective, compared=compared, excluded=tuple(excluded)
    )
    return best.with_best_selection(selection)


def _refresh_best(store: Path, symbol: str) -> tuple[Path | None, Summary | None]:
    """Recompute ``best/<SYMBOL>.json`` from the model records; caller holds the lock."""
    entries = _model_records(store, symbol)
    best = _choose_best(entries)
    if best is None:
        if entries:
            logger.warning("best/%s.json left as it is: no usable model record", symbol)
        return None, None
    path = record_path(store, BEST, symbol)
    return path, _put(path, _serialise(best.to_json()))


def update_best(store: Path, symbol: str) -> Path | None:
    """Rewrite ``best/<SYMBOL>.json`` from the model records (see :func:`_choose_best`).

    Returns its path, or ``None`` when there is no usable record of ``symbol`` (then an
    existing best file is left alone). Idempotent: an unchanged best file is not rewritten.
    """
    store = Path(store)
    if not store.exists():
        return None
    if not store.is_dir():
        raise StorageError(f"store path {store} is a file, not a folder; {STORE_HINT}")
    with _symbol_lock(store, symbol):
        path, _ = _refresh_best(store, symbol)
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


def write_record(store: Path, record: Record) -> Written:
    """Write one model's record, then recompute ``best/<SYMBOL>.json``, under the symbol lock.

    A record whose bytes equal the stored file is not rewritten (``replaced`` is ``None``).
    """
    store = Path(store)
    model, symbol = _name(record, "model"), _name(record, "symbol")
    path = record_path(store, model, symbol)
    data = _serialise(record.to_json())
    with _symbol_lock(store, symbol):
        replaced = _put(path, data)
        best_path, best_replaced = _refresh_best(store, symbol)
    return Written(path, replaced, best_path, best_replaced)


def check_writable(store: Path) -> None:
    """Fail early, with a one-line :class:`StorageError`, if ``store`` cannot hold records.

    Writes nothing that stays: a missing folder is not created here (so bad input elsewhere
    leaves no trace); its nearest existing ancestor must be a folder we can create files in.
    A temporary file is created and removed in that folder to prove it.
    """
    store = Path(store)
    if store.exists() and not store.is_dir():
        raise StorageError(f"store path {store} is a file, not a folder; {STORE_HINT}")
    folder = next(p for p in (store, *store.absolute().parents) if p.exists())
    if not folder.is_dir():
        raise StorageError(
            f"store folder {store} cannot be created: {folder} is a file; {STORE_HINT}"
        )
    try:
        temp, fd = _open_temp(folder / "write-check")
        os.close(fd)
        os.unlink(temp)
    except OSError as exc:
        where = "is not writable" if folder == store else f"cannot be created in {folder}"
        raise StorageError(f"store folder {store} {where} ({_reason(exc)}); {STORE_HINT}") from None


def picture_path(store: Path, model: str, symbol: str) -> Path:
    """The PNG of a model's winner, beside its record: ``<store>/<model>/<SYMBOL>.png``."""
    return Path(store) / model / f"{symbol}.png"


def write_picture(store: Path, model: str, symbol: str, png: bytes) -> Path:
    """Write the winner's picture atomically (unchanged bytes are not rewritten)."""
    path = picture_path(store, model, symbol)
    with _symbol_lock(Path(store), symbol):
        if not (path.exists() and path.read_bytes() == png):
            _write_bytes_atomic(path, png)
    return path
