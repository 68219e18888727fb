"""Seeds and the backend registry."""

from __future__ import annotations

import pytest

from objectives.evaluator import confirmation_seed, load_backend, window_seed


def test_seeds_depend_only_on_their_inputs() -> None:
    assert window_seed(0, 100) == window_seed(0, 100)
    assert window_seed(0, 100) != window_seed(0, 101)
    assert window_seed(0, 100) != window_seed(1, 100)
    seeds = {confirmation_seed(s, r) for s in range(3) for r in range(1, 40)}
    assert len(seeds) == 3 * 39 and not seeds & {0, 1, 2}
    assert all(0 < s < 2**62 for s in seeds)
    with pytest.raises(ValueError):
        confirmation_seed(0, 0)


def test_an_unknown_model_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown model"):
        load_backend("prophet")
