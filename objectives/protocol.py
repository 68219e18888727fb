"""The validation protocol: which targets a trial is scored on, and how they become its value.

* **contiguous** (``--val-window N``, the default): the ``N`` origins just before the test window.
* **blocked** (``--val-blocks K --val-step S``, rolling origin): ``K`` blocks of ``N`` origins;
  the last block is the contiguous window, each earlier one starts ``S`` bars before the next.
  ``S >= N``, so no target is scored twice; a block's paths may reach into the next block's
  rows (validation rows), never into the test window.

Every protocol ends before the test window: a path from a validation origin ``o`` covers rows
``o .. o + H - 1``, all before the first test origin, and its context is rows ``< o``.

The objective is the mean of the per-target losses over every target of every block (blocks
have equal sizes, so it is also the mean of the block means); confirmation, the standard error
and the paired tests use every target. Pruning reports the running value after each chunk of
``--prune`` targets inside a block and at the end of each block (:meth:`steps`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

import numpy as np

from objectives.exceptions import DataError


class BlockDates(TypedDict):
    """A block's first and last target time."""

    first: str
    last: str


class ProtocolDescription(TypedDict):
    """:meth:`ValidationProtocol.describe`: the record's description of a protocol."""

    kind: str
    val_blocks: int
    val_step: int
    blocks: list[BlockDates]


@dataclass(frozen=True)
class ValidationProtocol:
    """``blocks`` blocks of ``window`` origins, ``step`` bars between block starts."""

    window: int = 20
    blocks: int = 1
    step: int | None = None  # None: ``window`` (adjacent blocks); ignored for one block

    def __post_init__(self) -> None:
        if self.blocks < 1:
            raise DataError("--val-blocks must be at least 1")
        if self.step is not None and self.step < 1:
            raise DataError("--val-step must be at least 1")
        if self.blocks > 1 and self.stride < self.window:
            raise DataError(
                f"--val-step {self.stride} is less than --val-window {self.window}: blocks "
                "would overlap and score targets twice (use a step of at least the window)"
            )

    @property
    def kind(self) -> str:
        return "contiguous" if self.blocks == 1 else "blocked"

    @property
    def stride(self) -> int:
        """Bars between the starts of consecutive blocks."""
        return self.window if self.step is None else self.step

    @property
    def tag(self) -> str:
        """``v20`` (contiguous: the names studies always had) or ``v20x3s60`` (blocked)."""
        if self.blocks == 1:
            return f"v{self.window}"
        return f"v{self.window}x{self.blocks}s{self.stride}"

    def span(self) -> int:
        """Rows from the first validation origin to the last origin's path end, at ``H = 1``."""
        return (self.blocks - 1) * self.stride + self.window

    def layout(self, last_start: int) -> tuple[np.ndarray, ...]:
        """Each block's origins, oldest first; the last block starts at ``last_start``."""
        starts = [last_start - k * self.stride for k in range(self.blocks - 1, -1, -1)]
        return tuple(np.arange(s, s + self.window, dtype=np.int64) for s in starts)

    def steps(self, blocks: tuple[np.ndarray, ...], chunk: int) -> list[np.ndarray]:
        """The targets between pruning reports: each block cut into ``chunk`` targets (``0``:
        whole blocks), oldest first. Their concatenation is every validation target."""
        out: list[np.ndarray] = []
        for block in blocks:
            size = chunk or len(block)
            out.extend(block[i : i + size] for i in range(0, len(block), size))
        return out

    def describe(self, block_dates: list[tuple[str, str]]) -> ProtocolDescription:
        """The record's description: kind, sizes, and each block's first and last target."""
        return {
            "kind": self.kind,
            "val_blocks": self.blocks,
            "val_step": self.stride,
            "blocks": [{"first": first, "last": last} for first, last in block_dates],
        }

    def text(self) -> str:
        """One phrase for ``status``: ``contiguous 20`` or ``3 blocks x 20, step 60``."""
        if self.blocks == 1:
            return f"contiguous {self.window}"
        return f"{self.blocks} blocks x {self.window}, step {self.stride}"
