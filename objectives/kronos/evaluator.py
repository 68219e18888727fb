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
    sample_windows,
    stage1_tokens,
    time_features,
)

logger = logging.getLogger(__name__)

UPSTREAM_MAX_CONTEXT = 512  # contexts above 512 are truncated upstream
STAGE1_BATCH = 8  # windows per transformer pass


def check_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The sampling config with types fixed; ``DataError`` names a bad value."""
    try:
        out = {
            "temperature": float(config["temperature"]),
            "top_k": int(config["top_k"]),
            "top_p": float(config["top_p"]),
            "sample_count": int(config["sample_count"]),
            "max_context": min(int(config["max_context"]), UPSTREAM_MAX_CONTEXT),
            "clip": float(config["clip"]),
        }
    except KeyError as exc:
        raise DataError(f"Kronos config lacks {exc.args[0]!r}") from None
    for name in ("temperature", "clip"):
        if not out[name] > 0:
            raise DataError(f"Kronos {name} must be positive, got {out[name]}")
    for name in ("sample_count", "max_context"):
        if out[name] < 1:
            raise DataError(f"Kronos {name} must be at least 1, got {out[name]}")
    return out


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
        self.s2_cache: BoundedCache[torch.Tensor] = BoundedCache(cache_bytes // 4)
        self.bar_cache: BoundedCache[torch.Tensor] = BoundedCache(cache_bytes // 4)

    def evaluator(self, bars: Bars) -> KronosEvaluator:
        return KronosEvaluator(self, bars)


class KronosEvaluator:
    """Kronos bound to one symbol's bars."""

    def __init__(self, backend: KronosBackend, bars: Bars) -> None:
        self.backend = backend
        self.bars = bars
        self.fingerprint = bars.fingerprint()
        self.x = features(bars.prices, bars.volume, bars.amount)  # (N, 6) float32
        self.stamp = time_features(bars.timestamps)  # (N, 5) float32

    def _windows(self, targets: list[int], max_context: int, clip: float) -> dict[int, Stage1]:
        """Stage 1 for every target: from the cache, or batched over windows of equal length."""
        cache = self.backend.stage1_cache
        found: dict[int, Stage1] = {}
        todo: dict[int, list[int]] = {}
        for i in targets:
            hit = cache.get((self.fingerprint, i, max_context, clip))
            if hit is None:
                todo.setdefault(min(i, max_context), []).append(i)
            else:
                found[i] = hit
        device, tokenizer = self.backend.device, self.backend.tokenizer
        for length, group in todo.items():
            for at in range(0, len(group), STAGE1_BATCH):
                chunk = group[at : at + STAGE1_BATCH]
                normed = [normalise(self.x[i - length : i], clip) for i in chunk]
                x = torch.from_numpy(np.stack([z for z, _, _ in normed])).to(device)
                stamp = torch.from_numpy(np.stack([self.stamp[i - length : i] for i in chunk]))
                with torch.no_grad():
                    s1, s2 = tokenizer.encode(x)  # (B, L) each
                # clips that give the same tokens share the transformer pass and stage 2
                tokens = torch.cat([s1, s2], dim=1).cpu().numpy()
                shared = [
                    (self.fingerprint, i, max_context, hashlib.sha1(row.tobytes()).hexdigest())
                    for i, row in zip(chunk, tokens, strict=True)
                ]
                rows = [b for b, key in enumerate(shared) if cache.get(key) is None]
                if rows:
                    parts = stage1_tokens(
                        self.backend.predictor, tokenizer, s1[rows], s2[rows],
                        stamp[rows].to(device), max_context,
                    )  # fmt: skip
                    for b, part in zip(rows, parts, strict=True):
                        _, mean, std = normed[b]
                        cache.put(shared[b], Stage1(*part, mean, std, shared[b]))
                for i, key in zip(chunk, shared, strict=True):
                    window = cache.get(key)
                    if window is None:  # evicted at once by a tiny cache: recompute alone
                        b = chunk.index(i)
                        part = stage1_tokens(
                            self.backend.predictor, tokenizer, s1[b : b + 1], s2[b : b + 1],
                            stamp[b : b + 1].to(device), max_context,
                        )[0]  # fmt: skip
                        window = Stage1(*part, normed[b][1], normed[b][2], key)
                    found[i] = cache.put((self.fingerprint, i, max_context, clip), window)
        return found

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
        keys = [windows[i].key for i in targets_list]
        generators = [torch.Generator().manual_seed(window_seed(seed, i)) for i in targets_list]
        chosen = [windows[i] for i in targets_list]
        bars = sample_windows(
            self.backend.predictor,
            self.backend.tokenizer,
            chosen,
            keys,
            cfg,
            generators,
            self.backend.s2_cache,
            self.backend.bar_cache,
        )
        return np.stack(
            [denormalise(bar, w.mean, w.std) for bar, w in zip(bars, chosen, strict=True)]
        ).reshape(len(targets_list), 6)

    def forecast_close(
        self, targets: np.ndarray, config: Mapping[str, Any], seed: int
    ) -> np.ndarray:
        return self.forecast_bars(targets, config, seed)[:, 3].astype(np.float64)
