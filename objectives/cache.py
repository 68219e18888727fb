"""A least-recently-used cache bounded by the bytes of the tensors/arrays it holds."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

import numpy as np
import torch

V = TypeVar("V")

DEFAULT_CACHE_BYTES = 1 << 30  # 1 GiB per cache


def nbytes(value: Any) -> int:
    """Bytes held by tensors and arrays inside ``value`` (tuples, lists, dicts, dataclasses)."""
    if isinstance(value, torch.Tensor):
        return value.element_size() * value.nelement()
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, (tuple, list)):
        return sum(nbytes(v) for v in value)
    if isinstance(value, dict):
        return sum(nbytes(v) for v in value.values())
    if hasattr(value, "__dataclass_fields__"):
        return sum(nbytes(getattr(value, f)) for f in value.__dataclass_fields__)
    return 64


class BoundedCache(Generic[V]):
    """LRU mapping that evicts oldest entries once ``max_bytes`` is exceeded.

    A value held under several keys (an alias, e.g. Kronos's per-clip key of a transformer
    pass that is also held under its tokens) is charged once, while any of its keys holds it.
    """

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._charged: dict[int, list[int]] = {}  # id(value) -> [bytes, keys holding it]

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def get(self, key: Hashable) -> V | None:
        item = self._items.get(key)
        if item is None:
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return item

    def put(self, key: Hashable, value: V) -> V:
        if key in self._items:
            self._release(self._items.pop(key))
        self._items[key] = value
        charge = self._charged.setdefault(id(value), [0, 0])
        if charge[1] == 0:
            charge[0] = nbytes(value)
            self.bytes += charge[0]
        charge[1] += 1
        while self.bytes > self.max_bytes and len(self._items) > 1:
            self._release(self._items.popitem(last=False)[1])
            self.evictions += 1
        return value

    def _release(self, value: V) -> None:
        """One key no longer holds ``value``; its bytes are freed with its last key."""
        charge = self._charged[id(value)]
        charge[1] -= 1
        if charge[1] == 0:
            self.bytes -= charge[0]
            del self._charged[id(value)]

    def get_or_compute(self, key: Hashable, compute: Callable[[], V]) -> V:
        value = self.get(key)
        return self.put(key, compute()) if value is None else value

    def clear(self) -> None:
        self._items.clear()
        self._charged.clear()
        self.bytes = 0
