"""The second level of the stage-1 cache: a folder shared by every study, period and process.

See docs/design-notes.md, "A stage-1 cache on disk". The in-memory
:class:`objectives.cache.BoundedCache` stays the first level; on a memory miss
:meth:`objectives.evaluator.BoundEvaluator.stage1` asks :class:`Stage1Disk`, which reads the
window's entry here or computes it and writes it.

* **Keys are content, not positions.** An entry's name is the SHA-256 of the backend's
  namespace (model, a digest of the loaded weights and their config, the device, torch's
  version, the format) and of what the window reads: the context rows themselves (their bytes,
  dtype and shape) and the stage-1 settings. Rows appended to a CSV change the data's
  fingerprint but not an old window's rows, so a refresh finds the windows it has seen.
* **Values are what was computed, bit for bit.** One safetensors file per entry holds every
  tensor and array of the value (with its dtype, shape and strides) and, in its metadata, a
  small JSON tree of the structure (lists, tuples, ``dict`` keys, and the few classes a
  backend names: Kronos's ``Stage1``, ``StepContext``, ``KV``). Nothing is unpickled.
* **Writes are atomic.** A value is written to a temporary file in the entry's folder and
  renamed over the entry (``os.replace``): a reader sees a whole file or none, and two
  processes writing one key both succeed (the values are equal).
* **Bounded, least recently used.** A hit sets the entry's times to now; when the folder holds
  more than ``max_bytes`` the entries used longest ago are deleted.
* **Never fatal.** A truncated, foreign or unreadable entry is a miss (and deleted); a folder
  that cannot be written turns writing off with one warning.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from objectives.exceptions import DataError

logger = logging.getLogger(__name__)

V = TypeVar("V")

CACHE_DIR_ENV = "OPTIMISE_CACHE_DIR"
CACHE_SIZE_ENV = "OPTIMISE_CACHE_SIZE"
APP_DIR = "kronos-toto-optimise"
OFF = ("none", "off", "")
DEFAULT_MAX_BYTES = 20 << 30  # 20 GiB
FORMAT = "kronos-toto-optimise stage-1 entry, format 1"
ENTRIES = "stage1-v1"  # the folder of entries under the cache folder (a new format, a new one)
SUFFIX = ".safetensors"
RESCAN_EVERY = 64  # writes between two scans of the folder (other processes write too)
STALE_TEMP_S = 3600.0  # a temporary file this old belongs to a writer that died
_NAME = re.compile(r"^[0-9a-f]{64}\.safetensors$")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)


def default_dir() -> Path | None:
    """``$OPTIMISE_CACHE_DIR`` (``none`` turns the cache off), else
    ``$XDG_CACHE_HOME/kronos-toto-optimise``, else ``~/.cache/kronos-toto-optimise``."""
    given = os.environ.get(CACHE_DIR_ENV)
    if given is not None:
        return None if given.strip().lower() in OFF else Path(given).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / APP_DIR


def resolve_dir(given: str | None) -> Path | None:
    """``--cache-dir``: a folder, ``none`` (off), or ``None`` for :func:`default_dir`."""
    if given is None:
        return default_dir()
    return None if given.strip().lower() in OFF else Path(given).expanduser()


def parse_size(text: str) -> int:
    """``--cache-size``: bytes, or a number with K, M, G or T (powers of 1024), e.g. ``20G``."""
    match = _SIZE.match(str(text))
    if match is None:
        raise DataError(f"cache size {text!r} is not a size (e.g. 20G, 500M, 1048576)")
    number, unit = float(match.group(1)), match.group(2).lower()
    return int(number * (1 << (10 * " kmgt".index(unit or " "))))


def resolve_size(given: str | None) -> int:
    """``--cache-size``, else ``$OPTIMISE_CACHE_SIZE``, else :data:`DEFAULT_MAX_BYTES`."""
    text = given if given is not None else os.environ.get(CACHE_SIZE_ENV)
    return DEFAULT_MAX_BYTES if text is None or not text.strip() else parse_size(text)


def open_cache(given_dir: str | None = None, given_size: str | None = None) -> DiskCache | None:
    """The disk cache the command line asks for (``None``: off)."""
    root = resolve_dir(given_dir)
    return None if root is None else DiskCache(root, resolve_size(given_size))


@dataclass(frozen=True)
class CacheInfo:
    folder: Path
    entries: int
    bytes: int
    max_bytes: int


class DiskCache:
    """A folder of safetensors entries named by their key's digest, bounded by bytes (LRU).

    Counters (this process): ``hits``, ``misses``, ``writes``, ``evictions`` and ``bad`` (entries
    that could not be read, treated as misses)."""

    def __init__(self, root: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.root = Path(root)
        self.entries = self.root / ENTRIES
        self.max_bytes = int(max_bytes)
        self.hits = 0
        self.misses = 0
        self.writes = 0
        self.evictions = 0
        self.bad = 0
        self.writable = True
        self._known_bytes: int | None = None  # at the last scan, plus this process's writes
        self._writes_since_scan = 0
        self._lock = threading.Lock()

    def path(self, key: str) -> Path:
        return self.entries / key[:2] / f"{key}{SUFFIX}"

    def counters(self) -> dict[str, int]:
        return {
            "hits": self.hits, "misses": self.misses, "writes": self.writes,
            "evictions": self.evictions, "bad": self.bad,
        }  # fmt: skip

    # -- reading -------------------------------------------------------------------------

    def read(
        self, key: str, decode: Callable[[dict[str, torch.Tensor], dict[str, str]], V]
    ) -> V | None:
        """Entry ``key`` decoded by ``decode(tensors, metadata)``; ``None`` (a miss) when it is
        absent or cannot be read or decoded (then it is deleted, so the next write replaces it)."""
        path = self.path(key)
        try:
            with safe_open(str(path), framework="pt", device="cpu") as entry:
                metadata = dict(entry.metadata() or {})
                if metadata.get("format") != FORMAT or metadata.get("key") != key:
                    raise ValueError("not an entry of this format and key")
                tensors = {name: entry.get_tensor(name) for name in entry.keys()}  # noqa: SIM118
            value = decode(tensors, metadata)
        except FileNotFoundError:
            self.misses += 1
            return None
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
            self._bad(path, f"unreadable ({type(exc).__name__}: {exc})")
            return None
        now = time.time_ns()
        try:
            os.utime(path, ns=(now, now))  # recently used
        except OSError:
            pass
        self.hits += 1
        return value

    def _bad(self, path: Path, why: str) -> None:
        self.bad += 1
        self.misses += 1
        logger.warning("stage-1 cache: %s is %s; recomputing it", path, why)
        try:
            path.unlink()
        except OSError:
            pass

    # -- writing -------------------------------------------------------------------------

    def write(self, key: str, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> bool:
        """Write entry ``key`` atomically; ``False`` when it was not written (too large for the
        bound, or the folder cannot be written: then writing stops, with one warning)."""
        if not self.writable:
            return False
        size = sum(t.element_size() * t.nelement() for t in tensors.values())
        if size > self.max_bytes:
            return False
        path = self.path(key)
        temp: str | None = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temp = str(path.parent / f".{key[:16]}.{secrets.token_hex(6)}.tmp")
            # mode 0o666 less the umask, as for any new file; save_file keeps it
            os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            save_file(tensors, temp, metadata={**metadata, "format": FORMAT, "key": key})
            now = time.time_ns()
            os.utime(temp, ns=(now, now))
            os.replace(temp, path)
            temp = None
            written = path.stat().st_size
        except OSError as exc:
            self.writable = False
            logger.warning(
                "stage-1 cache: cannot write %s (%s); the disk cache is read-only for this run",
                self.root, exc.strerror or exc,
            )  # fmt: skip
            return False
        finally:
            if temp is not None:
                try:
                    os.unlink(temp)
                except OSError:
                    pass
        self.writes += 1
        with self._lock:
            self._writes_since_scan += 1
            if self._known_bytes is not None:
                self._known_bytes += written
            if (
                self._known_bytes is None
                or self._known_bytes > self.max_bytes
                or self._writes_since_scan >= RESCAN_EVERY
            ):
                self._evict()
        return True

    # -- the bound -----------------------------------------------------------------------

    def _files(self) -> Iterator[os.DirEntry[str]]:
        try:
            folders = list(os.scandir(self.entries))
        except OSError:
            return
        for folder in folders:
            if not folder.is_dir(follow_symlinks=False):
                continue
            try:
                yield from os.scandir(folder.path)
            except OSError:
                continue

    def _scan(self) -> list[tuple[int, int, str]]:
        """Every entry as (last used, bytes, path); stale temporary files are deleted."""
        found, stale = [], time.time() - STALE_TEMP_S
        for item in self._files():
            try:
                stat = item.stat(follow_symlinks=False)
            except OSError:
                continue
            if _NAME.match(item.name):
                found.append((stat.st_mtime_ns, stat.st_size, item.path))
            elif item.name.endswith(".tmp") and stat.st_mtime < stale:
                _unlink(item.path)
        return found

    def _evict(self) -> None:
        """Delete the entries used longest ago until the folder is within the bound."""
        entries = sorted(self._scan())
        total = sum(size for _, size, _ in entries)
        for _, size, path in entries:
            if total <= self.max_bytes:
                break
            if _unlink(path):
                self.evictions += 1
            total -= size
        self._known_bytes = total
        self._writes_since_scan = 0

    def info(self) -> CacheInfo:
        entries = self._scan()
        return CacheInfo(self.root, len(entries), sum(s for _, s, _ in entries), self.max_bytes)

    def clear(self) -> tuple[int, int]:
        """Delete every entry (and temporary file); (entries, bytes) deleted."""
        count = size = 0
        for item in self._files():
            if _NAME.match(item.name) or item.name.endswith(".tmp"):
                try:
                    bytes_ = item.stat(follow_symlinks=False).st_size
                except OSError:
                    continue
                if _unlink(item.path) and _NAME.match(item.name):
                    count, size = count + 1, size + bytes_
        for folder in list(os.scandir(self.entries)) if self.entries.is_dir() else []:
            try:
                os.rmdir(folder.path)
            except OSError:
                pass
        self._known_bytes = None
        return count, size


def _unlink(path: str) -> bool:
    try:
        os.unlink(path)
        return True
    except OSError:
        return False


# -- values as tensors and a JSON tree ------------------------------------------------------


def pack(value: object, types: Mapping[str, type]) -> tuple[dict[str, torch.Tensor], object]:
    """``value`` as safetensors tensors (each a contiguous CPU copy) and a JSON tree of its
    structure whose leaves name them, with each tensor's strides and device.

    Handles tensors, numpy arrays, lists, tuples, dicts with JSON-able keys, ``None``, numbers,
    strings, and the named tuples and dataclasses in ``types`` (name -> class)."""
    tensors: dict[str, torch.Tensor] = {}
    names = {cls: name for name, cls in types.items()}

    def walk(item: object) -> object:
        if isinstance(item, torch.Tensor):
            name = str(len(tensors))
            tensors[name] = torch.empty(item.shape, dtype=item.dtype).copy_(item.detach())
            return {"tensor": name, "stride": list(item.stride()), "device": str(item.device)}
        if isinstance(item, np.ndarray):
            name = str(len(tensors))
            tensors[name] = torch.from_numpy(np.ascontiguousarray(item).copy())
            return {"ndarray": name}
        if type(item) in names:
            cls = type(item)
            if dataclasses.is_dataclass(item):
                fields = {f.name: walk(getattr(item, f.name)) for f in dataclasses.fields(item)}
                return {"object": names[cls], "fields": fields}
            if isinstance(item, tuple):  # a named tuple
                return {"object": names[cls], "items": [walk(v) for v in item]}
        if isinstance(item, list):
            return {"list": [walk(v) for v in item]}
        if isinstance(item, tuple):
            return {"tuple": [walk(v) for v in item]}
        if isinstance(item, dict):
            return {"dict": [[k, walk(v)] for k, v in item.items()]}
        if item is None or isinstance(item, (bool, int, float, str)):
            return {"value": item}
        raise TypeError(f"cannot store a {type(item).__name__} in the stage-1 cache")

    return tensors, walk(value)


def unpack(tensors: Mapping[str, torch.Tensor], tree: object, types: Mapping[str, type]) -> Any:
    """The value :func:`pack` stored: each tensor copied into a fresh allocation with its
    recorded strides, on its recorded device. Raises ``ValueError`` on a malformed tree."""

    def walk(node: object) -> object:
        if not isinstance(node, dict) or len(node) == 0:
            raise ValueError("malformed stage-1 entry")
        if "tensor" in node:
            stored = tensors[node["tensor"]]
            return _restore(stored, node["stride"], node["device"])
        if "ndarray" in node:
            return tensors[node["ndarray"]].numpy().copy()
        if "object" in node:
            cls = types[node["object"]]
            if "fields" in node:
                return cls(**{k: walk(v) for k, v in node["fields"].items()})
            return cls(*[walk(v) for v in node["items"]])
        if "list" in node:
            return [walk(v) for v in node["list"]]
        if "tuple" in node:
            return tuple(walk(v) for v in node["tuple"])
        if "dict" in node:
            return {k: walk(v) for k, v in node["dict"]}
        if "value" in node:
            return node["value"]
        raise ValueError("malformed stage-1 entry")

    try:
        return walk(tree)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed stage-1 entry ({type(exc).__name__}: {exc})") from None


def _restore(stored: torch.Tensor, stride: Sequence[int], device: str) -> torch.Tensor:
    """A fresh tensor holding ``stored`` with the strides the computed one had (the layout a
    kernel is handed can decide its last bits), unless those strides overlap."""
    shape = tuple(stored.shape)
    if len(stride) != len(shape):
        raise ValueError("malformed stage-1 entry (strides)")
    if not _overlaps(shape, stride):
        out = torch.empty_strided(shape, tuple(stride), dtype=stored.dtype, device=device)
    else:
        out = torch.empty(shape, dtype=stored.dtype, device=device)
    return out.copy_(stored)


def _overlaps(shape: Sequence[int], stride: Sequence[int]) -> bool:
    """Whether two indices could share an element (e.g. a broadcast, stride 0)."""
    extent = 0
    for step, size in sorted((abs(st), sz) for sz, st in zip(shape, stride, strict=True) if sz > 1):
        if step <= extent:
            return True
        extent += step * (size - 1)
    return False


# -- keys ---------------------------------------------------------------------------------


def digest(parts: Sequence[object]) -> str:
    """SHA-256 of ``parts``: JSON-able values as JSON, tensors and arrays by dtype, shape and
    bytes (as a C-ordered copy), so equal contents give equal keys wherever they sit."""
    sha = hashlib.sha256()
    for part in parts:
        if isinstance(part, torch.Tensor):
            flat = part.detach().reshape(-1).contiguous().cpu()
            sha.update(json.dumps(["tensor", str(part.dtype), list(part.shape)]).encode())
            sha.update(flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b"")
        elif isinstance(part, np.ndarray):
            sha.update(json.dumps(["ndarray", part.dtype.str, list(part.shape)]).encode())
            sha.update(np.ascontiguousarray(part).tobytes())
        else:
            sha.update(json.dumps(["value", part], sort_keys=True, default=repr).encode())
        sha.update(b"\x00")
    return sha.hexdigest()


def weights_digest(modules: Sequence[torch.nn.Module], configs: Sequence[object] = ()) -> str:
    """A digest of what a model computes with: every tensor of its state (names, dtypes,
    shapes, bytes) and its config, so a checkpoint folder rewritten in place is a new model and
    two copies of one checkpoint are the same."""
    parts: list[object] = [repr(c) for c in configs]
    for module in modules:
        for name, tensor in module.state_dict().items():
            parts += [name, tensor]
    return digest(parts)


class Stage1Disk:
    """One backend's view of a :class:`DiskCache`: its namespace (computed on first use) and
    the classes its values hold."""

    def __init__(
        self,
        cache: DiskCache,
        model: str,
        identity: Callable[[], str],
        device: torch.device | str,
        types: Mapping[str, type] | None = None,
    ) -> None:
        self.cache = cache
        self.model = model
        self.device = torch.device(device)
        self.types = dict(types or {})
        self._identity = identity
        self._namespace: list[object] | None = None

    def namespace(self) -> list[object]:
        if self._namespace is None:
            device = [self.device.type]
            if self.device.type == "cuda":
                device.append(torch.cuda.get_device_name(self.device))
            self._namespace = [FORMAT, self.model, self._identity(), device, torch.__version__]
        return self._namespace

    def key(self, content: Sequence[object]) -> str:
        return digest([*self.namespace(), *content])

    def get_or_compute(self, content: Sequence[object], compute: Callable[[], V]) -> V:
        """The value stored for ``content``, else ``compute()`` (then stored)."""
        key = self.key(content)
        found = self.cache.read(
            key, lambda tensors, meta: unpack(tensors, json.loads(meta["tree"]), self.types)
        )
        if found is not None:
            return found
        value = compute()
        self.put(content, value, key)
        return value

    def put(self, content: Sequence[object], value: object, key: str | None = None) -> bool:
        """Store ``value`` for ``content``; ``False`` when it was not written."""
        try:
            tensors, tree = pack(value, self.types)
        except TypeError as exc:
            logger.warning("stage-1 cache: %s; not stored", exc)
            return False
        metadata = {"tree": json.dumps(tree), "model": self.model}
        return self.cache.write(key or self.key(content), tensors, metadata)
