"""Seeds and the backend registry."""

from __future__ import annotations

import pytest

from objectives.evaluator import load_backend, trial_seed, window_seed


def test_seeds_depend_only_on_their_inputs() -> None:
    assert trial_seed(0, 5) == trial_seed(0, 5)
    assert len({trial_seed(0, n) for n in range(100)}) == 100
    assert trial_seed(0, 5) != trial_seed(1, 5)
    assert window_seed(trial_seed(0, 5), 100) != window_seed(trial_seed(0, 5), 101)


def test_an_unknown_model_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown model"):
        load_backend("prophet")
