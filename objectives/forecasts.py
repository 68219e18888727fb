"""What an evaluator returns: point paths per (origin, column, step) and the sampled draws.

Both backends produce samples (Toto draws from its mixture, Kronos decodes its sampled token
paths), so sample-based metrics (CRPS) and bands read the same draws the point forecast was
reduced from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Draws:
    """One origin's samples: ``values`` ``(S, C, H)`` prices, each drawn ``weights[s]`` times
    (whole numbers: Kronos keeps each distinct decoded path once with its count)."""

    values: np.ndarray
    weights: np.ndarray  # (S,) float64, whole numbers

    def expanded(self, column: int, step: int) -> np.ndarray:
        """The draws of one (column, step), each repeated by its weight."""
        return np.repeat(self.values[:, column, step], self.weights.astype(np.int64))


@dataclass(frozen=True, eq=False)
class Forecast:
    """Forecasts of ``columns`` for the paths starting at each origin (row of step 1)."""

    origins: np.ndarray  # (W,) int64
    columns: tuple[str, ...]
    points: np.ndarray  # (W, C, H) float64 prices
    draws: tuple[Draws, ...]  # one per origin
    passes: int = 0  # forward passes over a context window this call ran (stage-1 misses)
    path_rows: int = 0  # path rows run against a cached window's keys (later path steps)

    @property
    def horizon(self) -> int:
        return int(self.points.shape[2])

    def column(self, name: str) -> int:
        return self.columns.index(name)

    @property
    def lead(self) -> np.ndarray:
        """Step-1 forecasts of the lead column (close when scored, else the first), ``(W,)``."""
        c = self.column("close") if "close" in self.columns else 0
        return np.ascontiguousarray(self.points[:, c, 0], dtype=np.float64)

    def quantiles(self, levels: list[float], column: int = 0, step: int = 0) -> np.ndarray:
        """``(W, len(levels))`` quantiles of one (column, step)'s draws."""
        return np.asarray([np.quantile(d.expanded(column, step), levels) for d in self.draws])


def concat(parts: list[Forecast]) -> Forecast:
    """Forecasts of consecutive origin chunks as one (the same columns and horizon)."""
    return Forecast(
        origins=np.concatenate([p.origins for p in parts]),
        columns=parts[0].columns,
        points=np.concatenate([p.points for p in parts]),
        draws=tuple(d for p in parts for d in p.draws),
        passes=sum(p.passes for p in parts),
        path_rows=sum(p.path_rows for p in parts),
    )
