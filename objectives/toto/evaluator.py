"""The Toto backend: one loaded model; evaluators bound to a symbol's bars.

See docs/design-notes.md, "Two-stage evaluation".

Under ``--task levels`` the context of target row ``i`` is the closes of rows
``[max(0, i - max_context), i)``; under ``--task trading`` it is each column's percent-change
series ``r[1..i-1]`` (``r[t] = (x[t] - x[t-1]) / x[t-1]``, 0 where ``x[t-1]`` is 0), the whole
history, as the trading code builds it, and the aggregate is applied to the return samples
(price ``x[i-1] * (1 + r_hat)``). Either is left padded to a multiple of the patch size with a
padding mask, as upstream's forecaster does. A path of ``H`` steps (``H`` at most the patch
size) reads the first ``H`` steps of the one predicted patch; each step is sampled from its
own marginal, as upstream samples a patch.

* Stage 1 (model, cached): one forward pass per window, each window alone (a batch of one,
  so no result depends on which other windows, or how many, were computed with it: batched
  matrix products differ in the last bits with the batch's shape), gives the step-1 marginal of
  the next patch: a Student-t mixture (weights, df, loc, scale; ``k`` each) in the scaled
  space, and the scaler's affine (loc, scale). Cached per (checkpoint, data fingerprint,
  target, max_context) in a bounded cache owned by the backend, and on disk
  (:mod:`objectives.disk_cache`) by the context values themselves and the path's length.
* Stage 2 (per trial): ``num_samples`` exact draws per window from its own generator seeded by
  :func:`objectives.evaluator.window_seed`, mapped to prices (``loc + scale * x``, as upstream's
  ``AffineTransformed``), then the aggregate. Vectorised over windows and samples.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import ClassVar

import numpy as np
import torch

from models.toto import Mixture, TotoModel, left_pad, sample_mixtures
from objectives.bars import Bars
from objectives.cache import DEFAULT_CACHE_BYTES, BoundedCache
from objectives.disk_cache import DiskCache, Stage1Disk, weights_digest
from objectives.evaluator import BoundEvaluator, window_seed
from objectives.exceptions import DataError
from objectives.forecasts import Draws, Forecast
from objectives.tasks import LEVELS, PRICE_COLUMNS, Task
from objectives.toto.space import DEFAULT_MAX_CONTEXT, TotoSettings, TotoSpace
from objectives.toto.spec import SERIES

logger = logging.getLogger(__name__)


class TotoBackend:
    """One loaded Toto model and its stage-1 cache."""

    name: ClassVar[str] = "toto"

    def __init__(
        self,
        model: TotoModel,
        checkpoint_id: str,
        device: str = "cpu",
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        disk_cache: DiskCache | None = None,
    ) -> None:
        self.model = model
        self.checkpoint_id = checkpoint_id
        self.device = torch.device(device)
        self.space = TotoSpace()
        #: (fingerprint, target, key) -> (4k + 2,) or (H, 4k + 2) float64 tensor
        self.stage1_cache: BoundedCache[torch.Tensor] = BoundedCache(cache_bytes)
        #: the second level, shared with other processes: keyed by the context's values
        self.stage1_disk = None if disk_cache is None else Stage1Disk(
            disk_cache, self.name, lambda: weights_digest([model], [model.config]), self.device
        )  # fmt: skip
        self.passes = 0  #: forward passes run so far (stage-1 misses)

    def evaluator(self, bars: Bars, task: Task = LEVELS, horizon: int = 1) -> TotoEvaluator:
        return TotoEvaluator(self, bars, task, horizon)

    def uncached(self) -> TotoBackend:
        """The same model with a zero-size stage-1 cache and no disk cache (live forecasting,
        for latency)."""
        return TotoBackend(self.model, self.checkpoint_id, str(self.device), cache_bytes=0)


class TotoEvaluator(BoundEvaluator[TotoSettings, torch.Tensor]):
    """Toto bound to one symbol's bars, a task and a horizon."""

    def __init__(
        self, backend: TotoBackend, bars: Bars, task: Task = LEVELS, horizon: int = 1
    ) -> None:
        super().__init__(
            backend.space, backend.stage1_cache, bars, task, horizon, backend.stage1_disk
        )
        self.backend = backend
        patch = backend.model.config.patch_size
        if self.horizon > patch:
            raise DataError(
                f"Toto forecasts at most one patch ({patch} steps) per pass; --horizon "
                f"{self.horizon} is longer"
            )
        self.dtype = next(backend.model.parameters()).dtype
        self.percent = SERIES[task.name] == "percent_change"
        #: per column: the series Toto reads (float64) and its context as the model's dtype
        self.series = {c: self._series(c) for c in task.columns}
        self.inputs = {c: torch.as_tensor(v, dtype=self.dtype) for c, v in self.series.items()}
        self.close = self.inputs.get("close", torch.as_tensor(bars.close, dtype=self.dtype))

    def _series(self, column: str) -> np.ndarray:
        values = self.bars.prices[:, PRICE_COLUMNS.index(column)]
        if not self.percent:
            return values
        return percent_changes(values)

    def marginals(
        self, targets: list[int], max_context: int, column: str = "close"
    ) -> torch.Tensor:
        """Marginals for ``targets``: ``(W, H, 4k + 2)`` float64 rows (one per path step) of
        mixture weights, df, loc, scale (``k`` each, scaled space), then the scaler's loc and
        scale (``(W, 4k + 2)`` at horizon 1, as before paths existed)."""
        series = self.inputs[column]
        window: Callable[[int], torch.Tensor]  # the context of target ``i``
        if self.percent:
            key: object = ("percent_change", column, self.horizon)
            window = lambda i: series[1:i]  # noqa: E731
        else:
            key = max_context if self.horizon == 1 else (max_context, self.horizon)
            window = lambda i: series[max(0, i - max_context) : i]  # noqa: E731
        rows = self.stage1(
            targets,
            key,
            lambda i: self._forward(window(i), self.horizon),
            lambda i: ("toto.forward", self.horizon, window(i)),  # what the pass reads
        )
        return torch.stack(rows)

    def _forward(self, context: torch.Tensor, steps: int) -> torch.Tensor:
        """One window's stage 1, computed alone: ``(4k + 2,)`` float64, or ``(steps, 4k + 2)``."""
        if len(context) == 0:
            raise DataError("Toto needs at least one value of context (a return needs two bars)")
        self.backend.passes += 1
        patch = self.backend.model.config.patch_size
        series, mask = left_pad([context], patch, -(-len(context) // patch) * patch)
        out = self.backend.model(series.to(self.backend.device), mask.to(self.backend.device))
        rows = []
        for h in range(steps):
            step = out.step(h)  # each (1, 1, k)
            parts = [*(t[:, 0] for t in step), out.loc, out.scale]  # (1, k) x4, (1, 1) x2
            rows.append(torch.cat([p.to(torch.float64) for p in parts], dim=-1)[0])
        return rows[0] if steps == 1 else torch.stack(rows)

    def _check(self, settings: TotoSettings) -> None:
        if self.percent and settings.max_context != DEFAULT_MAX_CONTEXT:
            raise DataError(
                "the trading code gives Toto the whole history of returns; max_context applies "
                "to --task levels only"
            )

    def _draws(
        self, rows_of: list[int], settings: TotoSettings, seed: int, column: str
    ) -> torch.Tensor:
        """``(W, H, num_samples)`` float64 draws of each path step, in the series' units
        (prices under levels, returns under trading), non-finite or huge ones set to 0."""
        rows = self.marginals(rows_of, settings.max_context, column)
        if rows.dim() == 2:
            rows = rows[:, None]  # (W, 1, 4k + 2)
        k = self.backend.model.config.k_components
        stream = 0 if column == "close" else 1 + PRICE_COLUMNS.index(column)
        generators = [
            torch.Generator(device=rows.device).manual_seed(window_seed(seed, i, stream))
            for i in rows_of
        ]
        steps = []
        for h in range(rows.shape[1]):
            step = rows[:, h]
            parts = torch.unflatten(step[:, : 4 * k], -1, (4, k))  # (W, 4, k)
            mixture = Mixture(*parts.unbind(1))  # (W, k) each
            x = sample_mixtures(mixture, settings.num_samples, generators)  # (W, N) scaled
            values = step[:, -2:-1] + step[:, -1:] * x  # (W, N)
            # upstream replaces non-finite or huge samples by 0; keep the same rule
            limit = torch.finfo(self.dtype).max / 2
            steps.append(torch.where(values.isfinite() & (values.abs() < limit), values, 0.0))
        return torch.stack(steps, dim=1)

    def samples(self, targets: np.ndarray, settings: TotoSettings, seed: int) -> torch.Tensor:
        """Stage 2: ``(W, num_samples)`` float64 price samples of each target's next close."""
        settings = self.settings(settings)
        rows_of = self.targets(targets)
        draws = self._draws(rows_of, settings, seed, "close")[:, 0]
        if not self.percent:
            return draws
        last = torch.as_tensor(self.bars.close[np.asarray(rows_of) - 1], dtype=torch.float64)
        return last[:, None] * (1.0 + draws)

    def forecast(
        self, origins: np.ndarray, settings: TotoSettings | Mapping[str, object], seed: int
    ) -> Forecast:
        settings = self.settings(settings)
        self._check(settings)
        rows_of = self.targets(origins)
        if self.percent and min(rows_of) < 2:
            raise DataError("a percent-change forecast needs two bars before its target")
        before = self.backend.passes
        points, values = [], []
        for column in self.task.columns:
            draws = self._draws(rows_of, settings, seed, column)  # (W, H, N)
            reduced = (
                torch.stack([settings.aggregate(draws[:, h]) for h in range(draws.shape[1])], dim=1)
                .cpu()
                .numpy()
                .astype(np.float64)
            )  # (W, H)
            sampled = draws.cpu().numpy()
            if self.percent:
                last = self.bars.prices[np.asarray(rows_of) - 1, PRICE_COLUMNS.index(column)]
                reduced = last[:, None] * np.cumprod(1.0 + reduced, axis=1)
                sampled = last[:, None, None] * np.cumprod(1.0 + sampled, axis=1)
            points.append(reduced)
            values.append(sampled)
        point_array = np.stack(points, axis=1)  # (W, C, H)
        value_array = np.stack(values, axis=1)  # (W, C, H, N)
        weights = np.ones(settings.num_samples)
        return Forecast(
            origins=np.asarray(rows_of, dtype=np.int64),
            columns=self.task.columns,
            points=point_array,
            draws=tuple(Draws(np.moveaxis(v, -1, 0), weights) for v in value_array),
            passes=self.backend.passes - before,
        )

    def forecast_close(
        self, targets: np.ndarray, settings: TotoSettings | Mapping[str, object], seed: int
    ) -> np.ndarray:
        """One-step close forecasts ``(len(targets),)`` under the evaluator's task."""
        settings = self.settings(settings)
        self._check(settings)
        if self.percent:
            rows_of = self.targets(targets)
            draws = self._draws(rows_of, settings, seed, "close")[:, 0]
            r_hat = settings.aggregate(draws).cpu().numpy().astype(np.float64)
            closes: np.ndarray = self.bars.close[np.asarray(rows_of) - 1] * (1.0 + r_hat)
            return closes
        prices = self.samples(targets, settings, seed)
        return settings.aggregate(prices).cpu().numpy().astype(np.float64)

    def forecast_quantiles(
        self,
        targets: np.ndarray,
        settings: TotoSettings | Mapping[str, object],
        seed: int,
        quantiles: list[float],
    ) -> np.ndarray:
        """Quantiles ``(len(targets), len(quantiles))`` of the next close's price samples (the
        same draws the forecast aggregates)."""
        prices = self.samples(targets, self.settings(settings), seed)
        out: np.ndarray = np.quantile(prices.cpu().numpy(), quantiles, axis=-1).T
        return out


def percent_changes(values: np.ndarray) -> np.ndarray:
    """The trading code's ``pre_process_data``: ``r[t] = (x[t] - x[t-1]) / x[t-1]`` for
    ``t >= 1`` (0 where ``x[t-1]`` is 0, non-finite results 0); ``r[0] = 1.0`` (never read:
    contexts start at ``r[1]``)."""
    values = np.asarray(values, dtype=np.float64)
    out = np.empty_like(values)
    out[0] = 1.0
    if len(values) > 1:
        previous = values[:-1]
        with np.errstate(divide="ignore", invalid="ignore"):
            out[1:] = np.where(previous != 0.0, (values[1:] - previous) / previous, 0.0)
        out[1:] = np.nan_to_num(out[1:], nan=0.0, posinf=0.0, neginf=0.0)
    return out
