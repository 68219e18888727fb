"""The Kronos backend: one loaded tokenizer + predictor, evaluators bound to a symbol's bars.

The context of target row ``i`` is rows ``[i - max_context, i)`` (fewer at the start of the
series), passed to the model exactly as upstream's ``KronosPredictor.predict`` would receive
it: z-scored over those rows, clipped, tokenised. Stage-1 results are cached per
``(data fingerprint, i, max_context, clip)`` and per ``(data fingerprint, i, max_context,
tokens)``: clips that tokenise the context alike share the transformer pass. Stage 2 is not
cached: it computes the s2 logits of a window's distinct s1 draws in one call and decodes its
distinct (s1, s2) pairs in one call, shapes that depend on that window's draws only. The
cache is bounded (:class:`objectives.cache.BoundedCache`; a pass held under both keys is
charged once) and belongs to the backend, i.e. to one checkpoint.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import ClassVar

import numpy as np
import torch

from models.kronos import LoadedKronos
from objectives.bars import Bars
from objectives.cache import DEFAULT_CACHE_BYTES, BoundedCache
from objectives.evaluator import BoundEvaluator, window_seed
from objectives.kronos.space import KronosSettings, KronosSpace
from objectives.kronos.stages import (
    Stage1,
    denormalise,
    features,
    normalise,
    sample_window,
    sample_window_draws,
    stage1_tokens,
    time_features,
)

logger = logging.getLogger(__name__)


class KronosBackend:
    name: ClassVar[str] = "kronos"

    def __init__(
        self, loaded: LoadedKronos, device: str = "cpu", cache_bytes: int = DEFAULT_CACHE_BYTES
    ) -> None:
        self.loaded = loaded
        self.predictor = loaded.predictor
        self.tokenizer = loaded.tokenizer
        self.device = device
        self.checkpoint_id = f"{loaded.checkpoint_id} (tokenizer {loaded.tokenizer_id})"
        self.space = KronosSpace()
        self.stage1_cache: BoundedCache[Stage1] = BoundedCache(cache_bytes)

    def evaluator(self, bars: Bars) -> KronosEvaluator:
        return KronosEvaluator(self, bars)

    def uncached(self) -> KronosBackend:
        """The same weights with a zero-size stage-1 cache (live forecasting, for latency)."""
        return KronosBackend(self.loaded, self.device, cache_bytes=0)


class KronosEvaluator(BoundEvaluator[KronosSettings]):
    """Kronos bound to one symbol's bars."""

    def __init__(self, backend: KronosBackend, bars: Bars) -> None:
        super().__init__(backend.space, backend.stage1_cache, bars)
        self.backend = backend
        self.x = features(bars.prices, bars.volume, bars.amount)  # (N, 6) float32
        self.stamp = time_features(bars.timestamps)  # (N, 5) float32

    def _windows(self, targets: list[int], settings: KronosSettings) -> list[Stage1]:
        """Stage 1 for every target, from the cache or computed window by window."""
        context, clip = settings.context, settings.clip
        return self.stage1(targets, (context, clip), lambda i: self._window(i, context, clip))

    def _window(self, i: int, max_context: int, clip: float) -> Stage1:
        """One window's stage 1, alone: tokenise; the transformer pass is shared by the clips
        that give the same tokens."""
        device, tokenizer = self.backend.device, self.backend.tokenizer
        length = min(i, max_context)
        z, mean, std = normalise(self.x[i - length : i], clip)
        with torch.no_grad():
            s1, s2 = tokenizer.encode(torch.from_numpy(z[None]).to(device))  # (1, L) each
        tokens = torch.cat([s1, s2], dim=1).cpu().numpy()
        key = (self.fingerprint, i, max_context, hashlib.sha1(tokens.tobytes()).hexdigest())
        shared = self.stage1_cache.get(key)
        if shared is None:
            stamp = torch.from_numpy(self.stamp[i - length : i][None]).to(device)
            part = stage1_tokens(self.backend.predictor, tokenizer, s1, s2, stamp, max_context)[0]
            shared = self.stage1_cache.put(key, Stage1(*part, mean, std))
        return shared

    def forecast_bars(
        self, targets: np.ndarray, settings: KronosSettings | Mapping[str, object], seed: int
    ) -> np.ndarray:
        """Mean decoded bars (len(targets), 6): open, high, low, close, volume, amount."""
        settings = self.settings(settings)
        rows = self.targets(targets)
        windows = self._windows(rows, settings)
        bars = [
            denormalise(
                sample_window(
                    self.backend.predictor, self.backend.tokenizer, window, settings,
                    torch.Generator().manual_seed(window_seed(seed, i)),
                ),
                window.mean,
                window.std,
            )
            for i, window in zip(rows, windows, strict=True)
        ]  # fmt: skip
        return np.stack(bars).reshape(len(rows), 6)

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
        """Quantiles ``(len(targets), len(quantiles))`` of the sampled closes (each of the
        ``sample_count`` draws decoded and un-normalised), from the same draws as the forecast."""
        settings = self.settings(settings)
        rows = self.targets(targets)
        out = []
        for i, window in zip(rows, self._windows(rows, settings), strict=True):
            bars, counts = sample_window_draws(
                self.backend.predictor, self.backend.tokenizer, window, settings,
                torch.Generator().manual_seed(window_seed(seed, i)),
            )  # fmt: skip
            closes = denormalise(bars, window.mean, window.std)[:, 3].astype(np.float64)
            out.append(np.quantile(np.repeat(closes, counts.astype(np.int64)), quantiles))
        return np.asarray(out)
