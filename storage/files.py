"""Store files on disk: atomic writes with normal permissions, and the per-symbol lock.

Writes
    Every write is atomic: a temporary file in the same folder, fsync, ``os.replace``, then a
    best-effort fsync of the folder. :func:`put` skips a write whose bytes equal the stored file
    (the mtime stays). Any ``OSError`` becomes a one-line :class:`StorageError` naming the path.

Permissions
    The temporary file is created with ``os.open(..., 0o666)``, so the kernel applies the umask
    (and any default ACL) exactly as for a normal new file: ``0o644`` under umask 022, ``0o640``
    under 027. No process-wide umask juggling is needed for that. When a file is replaced, its
    new mode is that default *plus* the bits the old file had (``default | old & 0o666``): a
    manual ``chmod 644`` survives the next export even under umask 027, and files left ``0o600``
    by older versions are widened back to the default (also when an identical re-export skips the
    rewrite; that case reads the umask from ``/proc/self/status``, see :func:`_umask`).

Locking
    :func:`symbol_lock` is an exclusive lock per (store, symbol) held across a whole
    read-modify-write: ``fcntl.flock`` on ``<store>/.locks/<SYMBOL>.lock`` (between processes;
    each call opens its own file description, so on local file systems it also excludes threads)
    plus a per-lock-file ``threading.Lock`` (for threads, also where flock is emulated with
    per-process POSIX locks, e.g. NFS). Dot-folders such as ``.locks`` are never model folders.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import secrets
import stat
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

from storage.exceptions import StorageError
from storage.record import JSONValue

logger = logging.getLogger(__name__)

LOCKS = ".locks"
FILE_MODE = 0o666
STORE_HINT = "pass --store DIR"

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def reason(exc: BaseException) -> str:
    """A one-line reason: the OS error text without the path repeated."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def serialise(payload: Mapping[str, JSONValue]) -> bytes:
    """A store file's bytes: indented JSON, keys in the payload's order, a final newline."""
    return (json.dumps(payload, indent=2, sort_keys=False) + "\n").encode()


def open_temp(path: Path) -> tuple[Path, int]:
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


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` by ``data`` so readers see the old or the new file, never half of one."""
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)  # mode 0o777 & ~umask, like mkdir(1)
    except OSError as exc:
        raise StorageError(f"cannot create store folder {folder}: {reason(exc)}") from None
    try:
        old_mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        old_mode = 0
    try:
        temp, fd = open_temp(path)
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {reason(exc)}") from None
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
            raise StorageError(f"cannot write {path}: {reason(exc)}") from None
        raise
    _fsync_folder(folder)


def write_json_atomic(path: Path, payload: Mapping[str, JSONValue]) -> None:
    """Write ``payload`` to ``path`` so readers see the old or the new file, never half of one."""
    write_bytes_atomic(Path(path), serialise(payload))


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


def widen_mode(path: Path) -> None:
    """Give an unchanged file at least the default mode (heals 0600 files); best effort."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        wanted = mode | (FILE_MODE & ~_umask())
        if wanted != mode:
            os.chmod(path, wanted)
    except OSError as exc:
        logger.debug("cannot widen the mode of %s: %s", path, reason(exc))


def read_old(path: Path) -> bytes | None | OSError:
    """The bytes at ``path``; ``None`` when there is no file, the error when it is unreadable."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        return exc


def put(path: Path, data: bytes, old: bytes | None | OSError) -> bool:
    """Write ``data`` unless ``old`` (the file's bytes, see :func:`read_old`) is exactly it.

    Returns whether the file was written; an unchanged file only gets its mode widened.
    """
    if old == data:
        widen_mode(path)
        return False
    write_bytes_atomic(path, data)  # raises StorageError if the folder is unwritable
    return True


def keep_copy(path: Path, data: bytes, stamp: str) -> Path:
    """Keep ``data`` (the file ``path`` held) in ``.replaced/`` beside it, before it is replaced:
    ``<folder>/.replaced/<stem>.<stamp>.json`` (``-2``, ``-3``, ... if that name is taken)."""
    folder = path.parent / ".replaced"
    copy = folder / f"{path.stem}.{stamp}{path.suffix}"
    n = 1
    while copy.exists():
        n += 1
        copy = folder / f"{path.stem}.{stamp}-{n}{path.suffix}"
    write_bytes_atomic(copy, data)
    return copy


_thread_locks: dict[str, threading.Lock] = {}
_thread_locks_guard = threading.Lock()


@contextlib.contextmanager
def symbol_lock(store: Path, symbol: str) -> Iterator[None]:
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
            raise StorageError(f"cannot create lock file {lock_path}: {reason(exc)}") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # Python retries on EINTR
            except OSError as exc:
                raise StorageError(f"cannot lock {lock_path}: {reason(exc)}") from None
            yield
        finally:
            os.close(fd)  # releases the flock


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
        temp, fd = open_temp(folder / "write-check")
        os.close(fd)
        os.unlink(temp)
    except OSError as exc:
        where = "is not writable" if folder == store else f"cannot be created in {folder}"
        raise StorageError(f"store folder {store} {where} ({reason(exc)}); {STORE_HINT}") from None
