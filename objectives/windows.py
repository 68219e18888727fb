"""Walk-forward one-step windows: validation targets, then test targets at the end.

Target row ``i`` is forecast from rows ``< i`` only (no look-ahead).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from objectives.exceptions import DataError


@dataclass(frozen=True)
class WindowSpec:
    """Window sizes; defaults are the trading code's."""

    val_window: int = 20
    test_window: int = 20
    horizon: int = 1
    min_context: int = 128

    def __post_init__(self) -> None:
        if self.horizon != 1:
            raise DataError("only --horizon 1 (one-step forecasts) is supported")
        for name in ("val_window", "test_window", "min_context"):
            if getattr(self, name) < 1:
                raise DataError(f"--{name.replace('_', '-')} must be at least 1")

    @property
    def tag(self) -> str:
        """Short form used in study names, e.g. ``v20-t20-h1``."""
        return f"v{self.val_window}-t{self.test_window}-h{self.horizon}"

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def rows_needed(self) -> int:
        return self.min_context + self.val_window + self.test_window


@dataclass(frozen=True)
class Windows:
    """Row indices of the validation and test targets for a series of ``n_rows`` bars."""

    validation: np.ndarray  # (val_window,) int64, ascending
    test: np.ndarray  # (test_window,) int64, ascending, all after validation

    @property
    def validation_end(self) -> int:
        """Rows ``[0, validation_end)`` are all the search may ever read."""
        return int(self.validation[-1]) + 1

    @property
    def test_end(self) -> int:
        return int(self.test[-1]) + 1


def split(n_rows: int, spec: WindowSpec) -> Windows:
    """Place the test window on the last rows and the validation window just before it."""
    if n_rows < spec.rows_needed():
        raise DataError(
            f"too few rows: {n_rows} bars, need at least {spec.rows_needed()} "
            f"(min-context {spec.min_context} + val-window {spec.val_window} "
            f"+ test-window {spec.test_window})"
        )
    test = np.arange(n_rows - spec.test_window, n_rows, dtype=np.int64)
    validation = np.arange(test[0] - spec.val_window, test[0], dtype=np.int64)
    return Windows(validation=validation, test=test)
