"""Walk-forward windows: validation origins, then test origins at the end.

An origin ``o`` is the row of a path's first step; the path covers rows ``o .. o + H - 1`` and
is forecast from rows ``< o`` only (no look-ahead). Each window holds ``val_window`` (or
``test_window``) origins whose whole paths lie inside it, so no validation path reaches a test
bar: the test rows are the last ``test_window + H - 1`` bars, validation the
``val_window + H - 1`` before them. At ``H = 1`` origins are the targets.
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
        for name in ("val_window", "test_window", "min_context", "horizon"):
            if getattr(self, name) < 1:
                raise DataError(f"--{name.replace('_', '-')} must be at least 1")

    @property
    def tag(self) -> str:
        """Short form used in study names, e.g. ``v20-t20-h1``."""
        return f"v{self.val_window}-t{self.test_window}-h{self.horizon}"

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def rows_needed(self) -> int:
        return self.min_context + self.val_window + self.test_window + 2 * (self.horizon - 1)


@dataclass(frozen=True)
class Windows:
    """Row indices of the validation and test targets for a series of ``n_rows`` bars."""

    validation: np.ndarray  # (val_window,) int64 origins, ascending
    test: np.ndarray  # (test_window,) int64 origins, ascending, all after validation's paths
    horizon: int = 1

    @property
    def validation_end(self) -> int:
        """Rows ``[0, validation_end)`` are all the search may ever read."""
        return int(self.validation[-1]) + self.horizon

    @property
    def test_end(self) -> int:
        return int(self.test[-1]) + self.horizon


def split(n_rows: int, spec: WindowSpec) -> Windows:
    """Place the test window on the last rows and the validation window just before it."""
    if n_rows < spec.rows_needed():
        raise DataError(
            f"too few rows: {n_rows} bars, need at least {spec.rows_needed()} "
            f"(min-context {spec.min_context} + val-window {spec.val_window} "
            f"+ test-window {spec.test_window}"
            + (f" + 2 x (horizon {spec.horizon} - 1)" if spec.horizon > 1 else "")
            + ")"
        )
    extra = spec.horizon - 1
    test_start = n_rows - spec.test_window - extra  # the first test origin
    test = np.arange(test_start, test_start + spec.test_window, dtype=np.int64)
    val_start = test_start - spec.val_window - extra
    validation = np.arange(val_start, val_start + spec.val_window, dtype=np.int64)
    return Windows(validation=validation, test=test, horizon=spec.horizon)
