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


# --- validation protocols (issue 20 item 2) ------------------------------------------------


def _protocol_cases() -> list[tuple[int, int, int | None, int, int]]:
    """Many (val_window, blocks, step, horizon, test_window) combinations, steps from the
    smallest allowed (= the window) to far apart, plus the contiguous default."""
    cases = []
    for window in (1, 3, 20):
        for blocks in (1, 2, 5):
            for step in (None,) if blocks == 1 else (None, window, window + 1, 3 * window + 7):
                for horizon in (1, 2, 7):
                    for test_window in (1, 20):
                        cases.append((window, blocks, step, horizon, test_window))
    return cases


@pytest.mark.parametrize("slack", [0, 5])
def test_no_protocol_ever_reaches_a_test_bar(slack: int) -> None:
    """Every target of every block, every context row (rows < origin) and every path step
    (origin + h, h < H) lies before the first test target, under every protocol; and the rows
    the search evaluator is bound to (``validation_end``) stop there too."""
    for window, blocks, step, horizon, test_window in _protocol_cases():
        spec = WindowSpec(
            val_window=window, test_window=test_window, horizon=horizon, min_context=4,
            val_blocks=blocks, val_step=step,
        )  # fmt: skip
        n = spec.rows_needed() + slack
        w = split(n, spec)
        first_test = int(w.test[0])
        assert len(w.validation_blocks) == blocks
        for block in w.validation_blocks:
            assert len(block) == window
            assert block[0] >= spec.min_context  # context rows [0, origin) are all there
            last_step = block + horizon - 1
            assert (block < first_test).all() and (last_step < first_test).all()
        np.testing.assert_array_equal(w.validation, np.concatenate(w.validation_blocks))
        assert len(np.unique(w.validation)) == blocks * window  # no target scored twice
        assert (np.diff(w.validation) > 0).all()
        assert w.validation_end <= first_test
        starts = [int(b[0]) for b in w.validation_blocks]
        assert (np.diff(starts) == spec.protocol.stride).all()
        assert w.test_end == n  # the test window is still the last bars
        with pytest.raises(DataError, match="too few rows"):
            split(spec.rows_needed() - 1, spec)


def test_one_block_is_the_contiguous_window_and_keeps_its_name_and_identity() -> None:
    spec = WindowSpec(val_blocks=1)
    assert spec.tag == "v20-t20-h1"
    assert spec.as_dict() == {"val_window": 20, "test_window": 20, "horizon": 1, "min_context": 128}
    np.testing.assert_array_equal(split(300, spec).validation, np.arange(260, 280))


def test_a_blocked_protocol_has_its_own_tag_and_identity() -> None:
    spec = WindowSpec(val_blocks=3, val_step=60)
    assert spec.tag == "v20x3s60-t20-h1"
    assert spec.as_dict()["val_blocks"] == 3 and spec.as_dict()["val_step"] == 60
    assert WindowSpec(**spec.as_dict()) == spec  # a study's attrs rebuild it
    assert WindowSpec(val_blocks=2).tag == "v20x2s20-t20-h1"  # adjacent blocks by default
    w = split(400, spec)
    assert [int(b[0]) for b in w.validation_blocks] == [240, 300, 360]
    assert spec.rows_needed() == 128 + 2 * 60 + 20 + 20


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"val_blocks": 0}, "--val-blocks must be at least 1"),
        ({"val_blocks": 2, "val_step": 0}, "--val-step must be at least 1"),
        ({"val_blocks": 2, "val_step": 19}, "blocks would overlap"),
        ({"val_step": 40}, "--val-step needs --val-blocks"),
    ],
)
def test_bad_protocols_are_refused(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(DataError, match=message):
        WindowSpec(**kwargs)


def test_pruning_steps_are_chunks_inside_blocks() -> None:
    spec = WindowSpec(val_window=7, val_blocks=2, val_step=10, min_context=1, test_window=1)
    w = split(spec.rows_needed(), spec)
    steps = spec.protocol.steps(w.validation_blocks, 5)
    assert [len(s) for s in steps] == [5, 2, 5, 2]
    np.testing.assert_array_equal(np.concatenate(steps), w.validation)
    assert [len(s) for s in spec.protocol.steps(w.validation_blocks, 0)] == [7, 7]
