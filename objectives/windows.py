"""Walk-forward windows: validation origins, then test origins at the end.

An origin ``o`` is the row of a path's first step; the path covers rows ``o .. o + H - 1`` and
is forecast from rows ``< o`` only (no look-ahead). Each window holds ``val_window`` (or
``test_window``) origins whose whole paths lie inside it, so no validation path reaches a test
bar: the test rows are the last ``test_window + H - 1`` bars, validation the
``val_window + H - 1`` before them. At ``H = 1`` origins are the targets. A blocked validation
protocol (``--val-blocks``, :mod:`objectives.protocol`) adds earlier blocks of validation origins
before that window.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from objectives.exceptions import DataError
from objectives.protocol import ValidationProtocol


@dataclass(frozen=True)
class WindowSpec:
    """Window sizes; defaults are the trading code's."""

    val_window: int = 20
    test_window: int = 20
    horizon: int = 1
    min_context: int = 128
    #: the validation protocol (:mod:`objectives.protocol`): 1 block is the contiguous window
    val_blocks: int = 1
    val_step: int | None = None

    def __post_init__(self) -> None:
        for name in ("val_window", "test_window", "min_context", "horizon"):
            if getattr(self, name) < 1:
                raise DataError(f"--{name.replace('_', '-')} must be at least 1")
        if self.val_step is not None and self.val_blocks == 1:
            raise DataError("--val-step needs --val-blocks of at least 2")
        self.protocol  # noqa: B018 - checks the blocks and the step

    @property
    def protocol(self) -> ValidationProtocol:
        return ValidationProtocol(self.val_window, self.val_blocks, self.val_step)

    @property
    def tag(self) -> str:
        """Short form used in study names: ``v20-t20-h1``, blocked ``v20x3s60-t20-h1``."""
        return f"{self.protocol.tag}-t{self.test_window}-h{self.horizon}"

    def as_dict(self) -> dict[str, int]:
        """The study's ``windows`` identity; a contiguous protocol has the keys studies always
        had, so they resume."""
        out = asdict(self)
        if self.val_blocks == 1:
            del out["val_blocks"], out["val_step"]
        else:
            out["val_step"] = self.protocol.stride
        return out

    def rows_needed(self) -> int:
        extra = self.protocol.span() - self.val_window
        return (
            self.min_context + extra + self.val_window + self.test_window + 2 * (self.horizon - 1)
        )


@dataclass(frozen=True)
class Windows:
    """Row indices of the validation and test targets for a series of ``n_rows`` bars."""

    validation: np.ndarray  # (val_window,) int64 origins, ascending
    test: np.ndarray  # (test_window,) int64 origins, ascending, all after validation's paths
    horizon: int = 1
    #: each validation block's origins, oldest first (``()``: one block, ``validation``)
    blocks: tuple[np.ndarray, ...] = ()

    @property
    def validation_blocks(self) -> tuple[np.ndarray, ...]:
        return self.blocks or (self.validation,)

    @property
    def validation_end(self) -> int:
        """Rows ``[0, validation_end)`` are all the search may ever read."""
        return int(self.validation[-1]) + self.horizon

    @property
    def test_end(self) -> int:
        return int(self.test[-1]) + self.horizon


def split(n_rows: int, spec: WindowSpec) -> Windows:
    """Place the test window on the last rows and the validation window just before it (a
    blocked protocol's earlier blocks before that)."""
    if n_rows < spec.rows_needed():
        more_blocks = (
            f" + {spec.val_blocks - 1} x val-step {spec.protocol.stride}"
            if spec.val_blocks > 1
            else ""
        )
        raise DataError(
            f"too few rows: {n_rows} bars, need at least {spec.rows_needed()} "
            f"(min-context {spec.min_context} + val-window {spec.val_window}{more_blocks} "
            f"+ test-window {spec.test_window}"
            + (f" + 2 x (horizon {spec.horizon} - 1)" if spec.horizon > 1 else "")
            + ")"
        )
    extra = spec.horizon - 1
    test_start = n_rows - spec.test_window - extra  # the first test origin
    test = np.arange(test_start, test_start + spec.test_window, dtype=np.int64)
    val_start = test_start - spec.val_window - extra
    blocks = spec.protocol.layout(val_start)
    return Windows(
        validation=np.concatenate(blocks), test=test, horizon=spec.horizon, blocks=blocks
    )
