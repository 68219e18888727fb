"""The bounded cache evicts least-recently-used entries by bytes."""

from __future__ import annotations

import numpy as np
import torch

from objectives.cache import BoundedCache, nbytes


def test_entries_are_evicted_oldest_first_once_over_budget() -> None:
    cache: BoundedCache[np.ndarray] = BoundedCache(max_bytes=3 * 800)
    for key in range(3):
        cache.put(key, np.zeros(100))
    cache.get(0)  # 0 is now the most recent
    cache.put(3, np.zeros(100))
    assert 1 not in cache and all(k in cache for k in (0, 2, 3))
    assert cache.bytes <= cache.max_bytes


def test_get_or_compute_computes_once() -> None:
    cache: BoundedCache[int] = BoundedCache()
    calls = []
    for _ in range(3):
        cache.get_or_compute("k", lambda: calls.append(1) or 7)
    assert calls == [1] and cache.hits == 2


def test_sizes_count_nested_tensors_and_arrays() -> None:
    value = {"a": torch.zeros(10, dtype=torch.float32), "b": (np.zeros(5), np.zeros(5))}
    assert nbytes(value) == 40 + 80
