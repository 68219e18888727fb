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


def test_a_value_under_two_keys_is_charged_once_until_its_last_key_goes() -> None:
    cache: BoundedCache[np.ndarray] = BoundedCache(max_bytes=3 * 800)
    shared = np.zeros(100)
    cache.put("by tokens", shared)
    cache.put("by clip", shared)  # an alias: no new bytes
    assert cache.bytes == 800
    cache.put("other", np.zeros(100))
    cache.put("third", np.zeros(100))  # 3 values, 4 keys: still within budget
    assert len(cache) == 4 and cache.bytes == 3 * 800 and cache.evictions == 0
    cache.put("fourth", np.zeros(100))
    # dropping "by tokens" frees nothing while "by clip" holds the value, so both go
    assert "by tokens" not in cache and "by clip" not in cache and cache.evictions == 2
    assert cache.bytes == 3 * 800 and len(cache) == 3


def test_re_putting_a_key_replaces_its_charge() -> None:
    cache: BoundedCache[np.ndarray] = BoundedCache()
    cache.put("k", np.zeros(100))
    cache.put("k", np.zeros(10))
    assert cache.bytes == 80 and len(cache) == 1
