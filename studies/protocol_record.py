"""The record's ``windows``: the sizes, and a blocked validation protocol described fully."""

from __future__ import annotations

import numpy as np

from storage.record import Block, Windows
from studies.context import StudyContext


def record_windows(ctx: StudyContext) -> Windows:
    """``val_window``, ``test_window``, ``forecast_horizon``; a blocked protocol adds its kind,
    block count, step and each block's first and last target time (UTC, ``…Z``). A contiguous
    protocol writes the keys records always had, so records of either age compare alike."""
    spec = ctx.spec
    base = Windows(
        val_window=spec.val_window, test_window=spec.test_window, forecast_horizon=spec.horizon
    )
    if spec.val_blocks == 1:
        return base
    stamps = ctx.bars.timestamps
    dates = [
        (_iso(stamps[int(block[0])]), _iso(stamps[int(block[-1])]))
        for block in ctx.windows.validation_blocks
    ]
    described = spec.protocol.describe(dates)
    return Windows(
        val_window=spec.val_window,
        test_window=spec.test_window,
        forecast_horizon=spec.horizon,
        kind=str(described["kind"]),
        val_blocks=int(described["val_blocks"]),
        val_step=int(described["val_step"]),
        blocks=tuple(Block(**b) for b in described["blocks"]),
    )


def _iso(stamp: np.datetime64) -> str:
    return str(stamp.astype("datetime64[s]")) + "Z"
