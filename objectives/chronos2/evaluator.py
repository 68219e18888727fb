"""The Chronos-2 backend: one loaded pipeline; evaluators bound to a symbol's bars.

See docs/design-notes.md, "Chronos-2". The context of target row ``i`` is the price levels of
rows ``[max(0, i - context_length), i)`` as float32 (the trading code's wrapper feeds levels,
not returns), each task column alone or the columns as one multivariate series.

* Stage 1 (model, cached): one ``Chronos2Pipeline.predict`` call per window, each window alone,
  gives ``(C, H, Q)`` quantiles at the model's levels; cached per (data fingerprint, target,
  context_length, use_multivariate, columns, horizon) in memory and on disk by the context's
  values. The package does all preprocessing (scaling, patching, padding).
* Stage 2 (per trial): the point is the median, one level, or the mean over the levels. No
  randomness: the seed is unused, and confirmation needs one draw.

The draws a metric reads are the quantiles, each weighted by the probability mass the pipeline
gives its level (``(q[k+1] - q[k-1]) / 2``, in units of 1/2000: whole numbers for the published
levels): CRPS is that of this discrete distribution, an approximation from the quantiles.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch

from objectives.bars import Bars
from objectives.cache import DEFAULT_CACHE_BYTES, BoundedCache
from objectives.chronos2.space import Chronos2Settings, Chronos2Space
from objectives.disk_cache import DiskCache, Stage1Disk, weights_digest
from objectives.evaluator import BoundEvaluator
from objectives.exceptions import DataError
from objectives.forecasts import Draws, Forecast
from objectives.tasks import LEVELS, PRICE_COLUMNS, Task

if TYPE_CHECKING:
    from chronos import Chronos2Pipeline


def level_weights(levels: list[float]) -> np.ndarray:
    """Whole-number weights proportional to each level's probability mass, as the pipeline's
    ``_get_prob_mass_per_quantile_level``: ``(q[k+1] - q[k-1]) / 2`` with ``q[0] = 0``,
    ``q[K+1] = 1``, in units of 1/2000 (exact for levels on a 0.001 grid)."""
    bounds = np.concatenate([[0.0], np.asarray(levels, np.float64), [1.0]])
    weights: np.ndarray = np.maximum(1.0, np.round(1000 * (bounds[2:] - bounds[:-2])))
    return weights


class Chronos2Backend:
    """One loaded Chronos-2 pipeline and its stage-1 cache."""

    name: ClassVar[str] = "chronos2"

    def __init__(
        self,
        pipeline: Chronos2Pipeline,
        checkpoint_id: str,
        device: str = "cpu",
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        disk_cache: DiskCache | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.checkpoint_id = checkpoint_id
        self.device = torch.device(device)
        self.space = Chronos2Space()
        self.levels: list[float] = [float(q) for q in pipeline.quantiles]
        self.weights = level_weights(self.levels)
        #: (fingerprint, target, key) -> (H, Q) or (C, H, Q) float64 tensor
        self.stage1_cache: BoundedCache[torch.Tensor] = BoundedCache(cache_bytes)
        model = pipeline.model
        self.stage1_disk = None if disk_cache is None else Stage1Disk(
            disk_cache, self.name, lambda: weights_digest([model], [model.config]), self.device
        )  # fmt: skip
        self.passes = 0  #: forward passes run so far (stage-1 misses)

    def evaluator(self, bars: Bars, task: Task = LEVELS, horizon: int = 1) -> Chronos2Evaluator:
        return Chronos2Evaluator(self, bars, task, horizon)

    def uncached(self) -> Chronos2Backend:
        """The same weights with no stage-1 cache (live forecasting, for latency)."""
        return Chronos2Backend(self.pipeline, self.checkpoint_id, str(self.device), 0)

    def level_index(self, level: float) -> int:
        for k, q in enumerate(self.levels):
            if abs(q - level) < 1e-9:
                return k
        raise DataError(f"Chronos-2 predicts no quantile level {level}; it has {self.levels}")

    def predict(self, context: torch.Tensor, horizon: int) -> torch.Tensor:
        """One window's pass, alone: ``context`` ``(T,)`` or ``(C, T)`` -> ``(..., H, Q)``."""
        self.passes += 1
        with torch.inference_mode():
            out = self.pipeline.predict([context], prediction_length=horizon, batch_size=1)
        first: torch.Tensor = out[0]  # the package is untyped; a list of tensors
        return first.to(torch.float64).transpose(-1, -2).cpu()  # (C, Q, H) -> (C, H, Q)


class Chronos2Evaluator(BoundEvaluator[Chronos2Settings, torch.Tensor]):
    """Chronos-2 bound to one symbol's bars, a task and a horizon."""

    def __init__(
        self, backend: Chronos2Backend, bars: Bars, task: Task = LEVELS, horizon: int = 1
    ) -> None:
        super().__init__(
            backend.space, backend.stage1_cache, bars, task, horizon, backend.stage1_disk
        )
        self.backend = backend
        self.prices = torch.as_tensor(bars.prices, dtype=torch.float32)  # (N, 4) OHLC levels

    def quantiles(
        self, rows: list[int], settings: Chronos2Settings, columns: tuple[str, ...]
    ) -> torch.Tensor:
        """Stage 1: ``(W, C, H, Q)`` float64 quantiles of each column's path."""
        ctx, h = settings.context_length, self.horizon

        def window(i: int, idx: int | list[int]) -> torch.Tensor:
            return self.prices[max(0, i - ctx) : i, idx]

        if settings.use_multivariate and len(columns) > 1:
            idx = [PRICE_COLUMNS.index(c) for c in columns]
            rows_of = self.stage1(
                rows, ("multivariate", columns, ctx, h),
                lambda i: self.backend.predict(window(i, idx).T.contiguous(), h),
                lambda i: ("chronos2.forward", h, window(i, idx).T),
            )  # fmt: skip
            return torch.stack(rows_of)
        per_column = []
        for column in columns:
            c = PRICE_COLUMNS.index(column)

            def compute(i: int, c: int = c) -> torch.Tensor:
                return self.backend.predict(window(i, c).contiguous(), h)

            def content(i: int, c: int = c) -> tuple[object, ...]:
                return ("chronos2.forward", h, window(i, c))

            values = self.stage1(rows, ("univariate", column, ctx, h), compute, content)
            per_column.append(torch.stack(values).reshape(len(rows), h, -1))
        return torch.stack(per_column, dim=1)

    def points(self, quantiles: torch.Tensor, settings: Chronos2Settings) -> np.ndarray:
        """Stage 2: ``(..., H)`` points from ``(..., H, Q)`` quantiles."""
        level = settings.point_level
        if level is None:
            return quantiles.mean(dim=-1).numpy()
        return quantiles[..., self.backend.level_index(level)].numpy()

    def forecast(
        self, origins: np.ndarray, settings: Chronos2Settings | Mapping[str, object], seed: int
    ) -> Forecast:
        """The task's columns along ``horizon``-step paths; ``seed`` is unused (deterministic)."""
        settings = self.settings(settings)
        rows = self.targets(origins)
        before = self.backend.passes
        q = self.quantiles(rows, settings, self.task.columns)  # (W, C, H, Q)
        values = q.permute(0, 3, 1, 2).numpy()  # (W, Q, C, H)
        return Forecast(
            origins=np.asarray(rows, dtype=np.int64),
            columns=self.task.columns,
            points=self.points(q, settings),
            draws=tuple(Draws(v, self.backend.weights) for v in values),
            passes=self.backend.passes - before,
        )

    def _close(self, targets: np.ndarray, settings: Chronos2Settings) -> torch.Tensor:
        """``(W, Q)`` step-1 close quantiles (with the task's columns when multivariate)."""
        columns = self.task.columns if "close" in self.task.columns else ("close",)
        q = self.quantiles(self.targets(targets), settings, columns)
        return q[:, columns.index("close"), 0]

    def forecast_close(
        self, targets: np.ndarray, settings: Chronos2Settings | Mapping[str, object], seed: int
    ) -> np.ndarray:
        settings = self.settings(settings)
        return self.points(self._close(targets, settings), settings).astype(np.float64)

    def forecast_quantiles(
        self,
        targets: np.ndarray,
        settings: Chronos2Settings | Mapping[str, object],
        seed: int,
        quantiles: list[float],
    ) -> np.ndarray:
        """Quantiles of the next close's weighted quantile draws (those the metrics read)."""
        q = self._close(targets, self.settings(settings)).numpy()
        counts = self.backend.weights.astype(np.int64)
        return np.asarray([np.quantile(np.repeat(row, counts), quantiles) for row in q])
