"""Walk-forward windows: test last, validation just before, enough context first."""

from __future__ import annotations

import numpy as np
import pytest

from objectives.exceptions import DataError
from objectives.windows import WindowSpec, split


def test_test_is_the_last_rows_and_validation_the_rows_before() -> None:
    windows = split(300, WindowSpec(val_window=20, test_window=10, min_context=128))
    np.testing.assert_array_equal(windows.test, np.arange(290, 300))
    np.testing.assert_array_equal(windows.validation, np.arange(270, 290))
    assert windows.validation_end == 290 and windows.test_end == 300


def test_the_tag_names_the_windows() -> None:
    assert WindowSpec().tag == "v20-t20-h1"


def test_too_few_rows_say_how_many_are_needed() -> None:
    with pytest.raises(DataError, match="need at least 168"):
        split(167, WindowSpec())
    assert split(168, WindowSpec()).validation[0] == 128


@pytest.mark.parametrize("field", ["val_window", "test_window", "min_context"])
def test_non_positive_sizes_are_refused(field: str) -> None:
    with pytest.raises(DataError):
        WindowSpec(**{field: 0})


def test_a_horizon_below_one_is_refused() -> None:
    with pytest.raises(DataError, match="horizon"):
        WindowSpec(horizon=0)


@pytest.mark.parametrize("horizon", [1, 2, 7])
def test_paths_keep_validation_and_test_apart(horizon: int) -> None:
    """Every validation path ends before the first test row; every test path ends on the
    data; each window holds exactly its number of origins."""
    spec = WindowSpec(val_window=20, test_window=10, horizon=horizon, min_context=30)
    n = spec.rows_needed()
    w = split(n, spec)
    assert len(w.validation) == 20 and len(w.test) == 10
    assert w.validation_end == int(w.validation[-1]) + horizon <= int(w.test[0])
    assert w.test_end == n and int(w.test[-1]) + horizon - 1 == n - 1
    assert int(w.validation[0]) == spec.min_context
    with pytest.raises(DataError, match="too few rows"):
        split(n - 1, spec)
