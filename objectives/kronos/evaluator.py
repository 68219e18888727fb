"""The Kronos backend: one loaded tokenizer + predictor, evaluators bound to a symbol's bars.

The context of target row ``i`` is rows ``[i - max_context, i)`` (fewer at the start of the
series), passed to the model exactly as upstream's ``KronosPredictor.predict`` would receive
it: z-scored over those rows, clipped, tokenised. Stage-1 results are cached per
``(data fingerprint, i, max_context, clip)`` and per ``(data fingerprint, i, max_context,
tokens)``: clips that tokenise the context alike share the transformer pass; s2 logits are
cached per ``(window, s1)`` and decoded bars per ``(window, s1, s2)``, a window being
``(data fingerprint, i, max_context, tokens)``. All caches are bounded
(:class:`objectives.cache.BoundedCache`) and belong to the backend, i.e. to one checkpoint.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import torch

from models.kronos import LoadedKronos
from objectives.bars import Bars
from objectives.cache import DEFAULT_CACHE_BYTES, BoundedCache
from objectives.evaluator import window_seed
from objectives.exceptions import DataError
from objectives.kronos.space import KronosSpace
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

UPSTREAM_MAX_CONTEXT = 512  # contexts above 512 are truncated upstream


def check_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The sampling config with types fixed and ranges checked; ``DataError`` names a bad value
    (one line, e.g. ``Kronos top_p must be in (0, 1], got 2.0``)."""
    missing = [k for k in ("temperature", "top_k", "top_p", "sample_count", "max_context", "clip")
               if k not in config]  # fmt: skip
    if missing:
        raise DataError(f"Kronos config lacks {', '.join(map(repr, missing))}")
    out = {
        "temperature": _number(config, "temperature", float),
        "top_k": _number(config, "top_k", int),
        "top_p": _number(config, "top_p", float),
        "sample_count": _number(config, "sample_count", int),
        "max_context": min(_number(config, "max_context", int), UPSTREAM_MAX_CONTEXT),
        "clip": _number(config, "clip", float),
    }
    for name in ("temperature", "clip"):
        if not out[name] > 0:
            raise DataError(f"Kronos {name} must be positive, got {out[name]}")
    for name in ("sample_count", "max_context"):
        if out[name] < 1:
            raise DataError(f"Kronos {name} must be at least 1, got {out[name]}")
    if out["top_k"] < 0:
        raise DataError(f"Kronos top_k must be 0 (off) or more, got {out['top_k']}")
    if not 0 < out["top_p"] <= 1:
        raise DataError(f"Kronos top_p must be in (0, 1], got {out['top_p']}")
    return out


def _number(config: Mapping[str, Any], name: str, kind: type) -> Any:
    """``config[name]`` as ``kind`` (an int must be whole), else a one-line ``DataError``."""
    value = config[name]
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DataError(f"Kronos {name} must be a number, got {value!r}") from None
    if not math.isfinite(number) or (kind is int and number != int(number)):
        raise DataError(f"Kronos {name} must be a finite {kind.__name__}, got {value!r}")
    return kind(number)


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


class KronosEvaluator:
    """Kronos bound to one symbol's bars."""

    def __init__(self, backend: KronosBackend, bars: Bars) -> None:
        self.backend = backend
        self.bars = bars
        self.fingerprint = bars.fingerprint()
        self.x = features(bars.prices, bars.volume, bars.amount)  # (N, 6) float32
        self.stamp = time_features(bars.timestamps)  # (N, 5) float32

    def _windows(self, targets: list[int], max_context: int, clip: float) -> dict[int, Stage1]:
        """Stage 1 for every target, from the cache or computed window by window."""
        cache = self.backend.stage1_cache
        found: dict[int, Stage1] = {}
        for i in dict.fromkeys(targets):
            hit = cache.get((self.fingerprint, i, max_context, clip))
            found[i] = (
                hit
                if hit is not None
                else cache.put(
                    (self.fingerprint, i, max_context, clip), self._window(i, max_context, clip)
                )
            )
        return found

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
        shared = self.backend.stage1_cache.get(key)
        if shared is None:
            stamp = torch.from_numpy(self.stamp[i - length : i][None]).to(device)
            part = stage1_tokens(self.backend.predictor, tokenizer, s1, s2, stamp, max_context)[0]
            shared = self.backend.stage1_cache.put(key, Stage1(*part, mean, std))
        return shared

    def forecast_bars(
        self, targets: np.ndarray, config: Mapping[str, Any], seed: int
    ) -> np.ndarray:
        """Mean decoded bars (len(targets), 6): open, high, low, close, volume, amount."""
        cfg = check_config(config)
        targets_list = [int(i) for i in np.asarray(targets).reshape(-1)]
        for i in targets_list:
            if not 1 <= i <= len(self.bars):
                raise DataError(f"target row {i} is outside 1..{len(self.bars)}")
        windows = self._windows(targets_list, cfg["max_context"], cfg["clip"])
        chosen = [windows[i] for i in targets_list]
        bars = [
            sample_window(
                self.backend.predictor,
                self.backend.tokenizer,
                window,
                cfg,
                torch.Generator().manual_seed(window_seed(seed, i)),
            )
            for i, window in zip(targets_list, chosen, strict=True)
        ]
        return np.stack(
            [denormalise(bar, w.mean, w.std) for bar, w in zip(bars, chosen, strict=True)]
        ).reshape(len(targets_list), 6)

    def forecast_close(
        self, targets: np.ndarray, config: Mapping[str, Any], seed: int
    ) -> np.ndarray:
        return self.forecast_bars(targets, config, seed)[:, 3].astype(np.float64)

    def forecast_quantiles(
        self, targets: np.ndarray, config: Mapping[str, Any], seed: int, quantiles: list[float]
    ) -> np.ndarray:
        """Quantiles ``(len(targets), len(quantiles))`` of the sampled closes (each of the
        ``sample_count`` draws decoded and un-normalised), from the same draws as the forecast."""
        cfg = check_config(config)
        targets_list = [int(i) for i in np.asarray(targets).reshape(-1)]
        windows = self._windows(targets_list, cfg["max_context"], cfg["clip"])
        out = []
        for i in targets_list:
            window = windows[i]
            bars, counts = sample_window_draws(
                self.backend.predictor, self.backend.tokenizer, window, cfg,
                torch.Generator().manual_seed(window_seed(seed, i)),
            )  # fmt: skip
            closes = denormalise(bars, window.mean, window.std)[:, 3].astype(np.float64)
            out.append(np.quantile(np.repeat(closes, counts.astype(np.int64)), quantiles))
        return np.asarray(out)
