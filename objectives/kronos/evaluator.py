"""The Kronos backend: one loaded tokenizer + predictor, evaluators bound to a symbol's bars.

The context of target row ``i`` is rows ``[i - max_context, i)`` (fewer at the start of the
series), passed to the model exactly as upstream's ``KronosPredictor.predict`` would receive
it: z-scored over those rows, clipped, tokenised. Stage-1 results are cached per
``(data fingerprint, i, max_context, clip)`` and per ``(data fingerprint, i, max_context,
tokens)``: clips that tokenise the context alike share the transformer pass. Stage 1 also
holds the window's s2 logits after every s1 token (its s2 table, one call of a fixed shape), so
a warm trial only draws, reads rows of the table and decodes its distinct (s1, s2) pairs in one
call, a shape that depends on that window's draws only. The
cache is bounded (:class:`objectives.cache.BoundedCache`; a pass held under both keys is
charged once) and belongs to the backend, i.e. to one checkpoint. Its second level, on disk
(:mod:`objectives.disk_cache`), keys a window's :class:`Stage1` by the frame rows and time
features it reads, ``max_context``, ``clip`` and the horizon.

Under ``--task trading`` the frame is the trading code's wrapper's (a missing ``amount`` is
``volume * close``) and a path of ``H`` steps is generated as upstream does
(:mod:`objectives.kronos.paths`), with the future time features of the wrapper's
``_build_future_index`` (last timestamp plus the median step of the lookback rows).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Mapping
from typing import ClassVar

import numpy as np
import pandas as pd
import torch

from models.kronos import LoadedKronos
from models.kronos.layers import KV
from objectives.bars import Bars
from objectives.cache import DEFAULT_CACHE_BYTES, BoundedCache
from objectives.disk_cache import DiskCache, Stage1Disk, weights_digest
from objectives.evaluator import BoundEvaluator, window_seed
from objectives.forecasts import Draws, Forecast
from objectives.kronos.paths import sample_paths, step_contexts
from objectives.kronos.space import KronosSettings, KronosSpace
from objectives.kronos.spec import AMOUNT_FILL
from objectives.kronos.stages import (
    Stage1,
    StepContext,
    denormalise,
    features,
    normalise,
    s2_table,
    sample_window_draws,
    stage1_tokens,
    time_features,
)
from objectives.tasks import LEVELS, PRICE_COLUMNS, Task

logger = logging.getLogger(__name__)


class KronosBackend:
    name: ClassVar[str] = "kronos"

    def __init__(
        self,
        loaded: LoadedKronos,
        device: str = "cpu",
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        disk_cache: DiskCache | None = None,
    ) -> None:
        self.loaded = loaded
        self.predictor = loaded.predictor
        self.tokenizer = loaded.tokenizer
        self.device = device
        self.checkpoint_id = f"{loaded.checkpoint_id} (tokenizer {loaded.tokenizer_id})"
        self.space = KronosSpace()
        self.stage1_cache: BoundedCache[Stage1] = BoundedCache(cache_bytes)
        #: the second level, shared with other processes: keyed by the rows a window reads
        self.stage1_disk = None if disk_cache is None else Stage1Disk(
            disk_cache, self.name, self._weights_digest, device,
            {"Stage1": Stage1, "StepContext": StepContext, "KV": KV},
        )  # fmt: skip
        self.passes = 0  #: transformer passes over a context window (stage 1, cached)
        self.path_rows = 0  #: path rows run per trial against a cached window's keys

    def evaluator(self, bars: Bars, task: Task = LEVELS, horizon: int = 1) -> KronosEvaluator:
        return KronosEvaluator(self, bars, task, horizon)

    def _weights_digest(self) -> str:
        predictor, tokenizer = self.predictor, self.tokenizer
        return weights_digest([predictor, tokenizer], [predictor.config, tokenizer.config])

    def uncached(self) -> KronosBackend:
        """The same weights with a zero-size stage-1 cache and no disk cache (live
        forecasting, for latency)."""
        return KronosBackend(self.loaded, self.device, cache_bytes=0)


class KronosEvaluator(BoundEvaluator[KronosSettings, Stage1]):
    """Kronos bound to one symbol's bars, a task and a horizon."""

    def __init__(
        self, backend: KronosBackend, bars: Bars, task: Task = LEVELS, horizon: int = 1
    ) -> None:
        super().__init__(
            backend.space, backend.stage1_cache, bars, task, horizon, backend.stage1_disk
        )
        self.backend = backend
        self.amount_fill = "close" if AMOUNT_FILL[task.name] == "volume * close" else "mean"
        self.x = features(bars.prices, bars.volume, bars.amount, self.amount_fill)  # (N, 6)
        self.stamp = time_features(bars.timestamps)  # (N, 5) float32
        self._future_stamps: dict[tuple[int, int], torch.Tensor] = {}

    def _key(self, settings: KronosSettings) -> tuple[object, ...]:
        """What stage 1 depends on besides the window (the frame's fill and the horizon only
        where they differ from a one-step upstream forecast)."""
        base = (settings.context, settings.clip)
        if self.amount_fill == "mean" and self.horizon == 1:
            return base
        return (*base, self.amount_fill, self.horizon)

    def _windows(self, targets: list[int], settings: KronosSettings) -> list[Stage1]:
        """Stage 1 for every target, from the cache or computed window by window."""
        context, clip = settings.context, settings.clip
        key = self._key(settings)
        return self.stage1(
            targets,
            key,
            lambda i: self._window(i, context, clip, key),
            lambda i: self._reads(i, context, clip),
        )

    def _reads(self, i: int, max_context: int, clip: float) -> tuple[object, ...]:
        """Everything :meth:`_window` is a function of, for the disk cache: the frame rows and
        time features of the window (the fill of ``amount`` is in the rows), ``max_context``,
        ``clip`` and the horizon; not the target's position."""
        length = min(i, max_context)
        rows = slice(i - length, i)
        return ("kronos.window", max_context, float(clip), self.horizon, self.x[rows],
                self.stamp[rows])  # fmt: skip

    def _window(self, i: int, max_context: int, clip: float, key: tuple[object, ...]) -> Stage1:
        """One window's stage 1, alone: tokenise; the transformer pass is shared by the clips
        that give the same tokens."""
        device, tokenizer = self.backend.device, self.backend.tokenizer
        length = min(i, max_context)
        z, mean, std = normalise(self.x[i - length : i], clip)
        with torch.no_grad():
            s1, s2 = tokenizer.encode(torch.from_numpy(z[None]).to(device))  # (1, L) each
        tokens = torch.cat([s1, s2], dim=1).cpu().numpy()
        digest = hashlib.sha1(tokens.tobytes()).hexdigest()
        shared_key = (self.fingerprint, i, max_context, digest, *key[2:])
        shared = self.stage1_cache.get(shared_key)
        if shared is None:
            stamp = torch.from_numpy(self.stamp[i - length : i][None]).to(device)
            part = stage1_tokens(
                self.backend.predictor, tokenizer, s1, s2, stamp, max_context, self.horizon
            )[0]
            self.backend.passes += 1
            context, steps = None, {}
            if self.horizon > 1:
                context = (s1, s2, stamp)
                steps = step_contexts(
                    self.backend.predictor, s1, s2, stamp, max_context, self.horizon
                )
                self.backend.passes += len(steps)
            stage1 = Stage1(*part, mean, std, context, steps)
            stage1 = dataclasses.replace(stage1, table=s2_table(self.backend.predictor, stage1))
            shared = self.stage1_cache.put(shared_key, stage1)
        return shared

    def future_stamp(self, i: int, max_context: int) -> torch.Tensor:
        """``(1, H, 5)`` time features of the path from origin ``i``: the wrapper's
        ``_build_future_index`` over the lookback rows (last + median step; 1 day if none),
        computed once per (origin, lookback): every trial's path from ``i`` reads them."""
        key = (i, max_context)
        if key not in self._future_stamps:
            self._future_stamps[key] = self._future_stamp(i, max_context)
        return self._future_stamps[key]

    def _future_stamp(self, i: int, max_context: int) -> torch.Tensor:
        history = pd.DatetimeIndex(self.bars.timestamps[i - min(i, max_context) : i])
        step = history.to_series().diff().dropna().median() if len(history) >= 2 else None
        if step is None or pd.isna(step) or step <= pd.Timedelta(0):
            step = pd.Timedelta(days=1)
        future = pd.date_range(start=history[-1] + step, periods=self.horizon, freq=step)
        return torch.from_numpy(time_features(future.values)[None]).to(self.backend.device)

    def _draws(
        self, i: int, window: Stage1, settings: KronosSettings, seed: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """One window's distinct decoded paths ``(P, H, 6)`` (z-scored) and their counts."""
        generator = torch.Generator().manual_seed(window_seed(seed, i))
        predictor, tokenizer = self.backend.predictor, self.backend.tokenizer
        if self.horizon == 1:
            bars, counts = sample_window_draws(predictor, tokenizer, window, settings, generator)
            return bars[:, None], counts
        bars, counts, rows = sample_paths(
            predictor, tokenizer, window, settings, generator,
            self.future_stamp(i, settings.context), settings.context,
        )  # fmt: skip
        self.backend.path_rows += rows
        return bars, counts

    def forecast(
        self, origins: np.ndarray, settings: KronosSettings | Mapping[str, object], seed: int
    ) -> Forecast:
        """The task's columns along the path from each origin, mean over the sampled paths
        (z-scored, then un-normalised, as upstream), and every decoded path as a draw."""
        settings = self.settings(settings)
        rows = self.targets(origins)
        before, rows_before = self.backend.passes, self.backend.path_rows
        columns = [PRICE_COLUMNS.index(c) for c in self.task.columns]
        points, draws = [], []
        for i, window in zip(rows, self._windows(rows, settings), strict=True):
            bars, counts = self._draws(i, window, settings, seed)  # (P, H, 6), (P,)
            if self.horizon == 1:  # upstream's mean, in the order one-step forecasts had it
                mean_z = ((counts[:, None] * bars[:, 0]).sum(0) / counts.sum())[None]
            else:
                mean_z = (counts[:, None, None] * bars).sum(0) / counts.sum()  # (H, 6)
            path = denormalise(mean_z, window.mean, window.std)  # (H, 6) float32
            points.append(path[:, columns].T.astype(np.float64))  # (C, H)
            decoded = denormalise(bars, window.mean, window.std).astype(np.float64)
            draws.append(Draws(np.transpose(decoded[:, :, columns], (0, 2, 1)), counts))
        return Forecast(
            origins=np.asarray(rows, dtype=np.int64),
            columns=self.task.columns,
            points=np.stack(points),
            draws=tuple(draws),
            passes=self.backend.passes - before,
            path_rows=self.backend.path_rows - rows_before,
        )

    def forecast_bars(
        self, targets: np.ndarray, settings: KronosSettings | Mapping[str, object], seed: int
    ) -> np.ndarray:
        """Mean decoded bars of step 1 (len(targets), 6): open, high, low, close, volume,
        amount."""
        settings = self.settings(settings)
        rows = self.targets(targets)
        windows = self._windows(rows, settings)
        out = []
        for i, window in zip(rows, windows, strict=True):
            bars, counts = self._draws(i, window, settings, seed)
            mean_z = (counts[:, None] * bars[:, 0]).sum(0) / counts.sum()
            out.append(denormalise(mean_z, window.mean, window.std))
        return np.stack(out).reshape(len(rows), 6)

    def forecast_close(
        self, targets: np.ndarray, settings: KronosSettings | Mapping[str, object], seed: int
    ) -> np.ndarray:
        return self.forecast_bars(targets, settings, seed)[:, 3].astype(np.float64)

    def forecast_quantiles(
        self,
        targets: np.ndarray,
        settings: KronosSettings | Mapping[str, object],
        seed: int,
        quantiles: list[float],
    ) -> np.ndarray:
        """Quantiles ``(len(targets), len(quantiles))`` of the sampled step-1 closes (each of
        the ``sample_count`` draws decoded and un-normalised), from the same draws as the
        forecast."""
        settings = self.settings(settings)
        rows = self.targets(targets)
        out = []
        for i, window in zip(rows, self._windows(rows, settings), strict=True):
            bars, counts = self._draws(i, window, settings, seed)
            closes = denormalise(bars[:, 0], window.mean, window.std)[:, 3].astype(np.float64)
            out.append(np.quantile(np.repeat(closes, counts.astype(np.int64)), quantiles))
        return np.asarray(out)
