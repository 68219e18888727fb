"""The two stages of a Kronos one-step forecast, with upstream's inputs and truncation.

Upstream (``KronosPredictor.predict`` with ``pred_len=1``) z-scores the whole context it is
given, clips it, tokenises all of it, runs the transformer on the last ``max_context`` tokens
with their time features, samples s1 then s2 (``sample_count`` times), decodes the last
``max_context`` tokens of context + new token, averages the decoded bars over the samples and
un-normalises them. Stage 1 (:func:`stage1`) does everything that does not depend on sampling;
stage 2 (:func:`sample_windows`) samples and decodes each distinct token once.

For ``pred_len=1`` upstream's transformer sees only the context's time features (the target's
stamp would only be read for a second step), so the target's timestamp is not needed.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from models.kronos import Kronos, KronosTokenizer
from models.kronos.layers import KV
from objectives.kronos.sampling import draw, filtered_probs

STD_EPS = 1e-5  # upstream: (x - mean) / (std + 1e-5)


def features(
    prices: np.ndarray, volume: np.ndarray | None, amount: np.ndarray | None
) -> np.ndarray:
    """(N, 4) OHLC + volume/amount -> (N, 6) float32 open, high, low, close, volume, amount.

    As upstream: no volume means zero volume and amount; no amount means volume x mean price.
    """
    n = len(prices)
    if volume is None:
        volume, amount = np.zeros(n), np.zeros(n)
    elif amount is None:
        amount = volume * prices.mean(axis=1)
    return np.column_stack([prices, volume, amount]).astype(np.float32)


def time_features(timestamps: np.ndarray) -> np.ndarray:
    """(N,) datetime64 -> (N, 5) float32 minute, hour, weekday, day, month."""
    t = pd.DatetimeIndex(timestamps)
    return np.column_stack([t.minute, t.hour, t.day_of_week, t.day, t.month]).astype(np.float32)


def normalise(x: np.ndarray, clip: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(L, 6) float32 -> z-scored and clipped (L, 6), and the float32 mean and std (6,)."""
    # Upstream takes np.mean / np.std in float32, whose SIMD pairwise sums depend on the
    # array's memory alignment in the last bit. Sequential float64 sums (cumsum) rounded to
    # float32 agree with them to an ulp and make a window's forecast a function of its rows only.
    n = len(x)
    wide = x.astype(np.float64)
    mean64 = np.cumsum(wide, axis=0)[-1] / n
    var64 = np.cumsum((wide - mean64) ** 2, axis=0)[-1] / n
    mean, std = mean64.astype(np.float32), np.sqrt(var64).astype(np.float32)
    bound = float(clip)  # a Python float keeps the float32 dtype, as upstream
    z = np.clip((x - mean) / (std + STD_EPS), -bound, bound)
    return z.astype(np.float32, copy=False), mean, std


def denormalise(bar: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return bar.astype(np.float32) * (std + STD_EPS) + mean


@dataclass(frozen=True)
class Stage1:
    """What one window needs for any sampling setting (tensors on the model's device)."""

    s1_logits: torch.Tensor  # (V1,) float32, on the CPU
    last_hidden: torch.Tensor  # (1, C)
    dep_kv: KV  # (1, nh, W, hs) keys/values of the s2 layer
    prefix: list[KV]  # per decoder block: (1, nh, P, hs) for the tokens before the new one
    mean: np.ndarray  # (6,) float32
    std: np.ndarray  # (6,) float32
    key: Hashable = None  # what the window's s2 logits and bars are cached under


@torch.no_grad()
def stage1(
    predictor: Kronos,
    tokenizer: KronosTokenizer,
    x: torch.Tensor,
    stamp: torch.Tensor,
    max_context: int,
) -> list[tuple[torch.Tensor, torch.Tensor, KV, list[KV]]]:
    """Normalised contexts (B, L, 6) and time features (B, L, 5) -> per window
    (s1_logits, last_hidden, dep_kv, prefix); see :class:`Stage1`."""
    s1, s2 = tokenizer.encode(x)  # (B, L) each
    return stage1_tokens(predictor, tokenizer, s1, s2, stamp, max_context)


@torch.no_grad()
def stage1_tokens(
    predictor: Kronos,
    tokenizer: KronosTokenizer,
    s1: torch.Tensor,
    s2: torch.Tensor,
    stamp: torch.Tensor,
    max_context: int,
) -> list[tuple[torch.Tensor, torch.Tensor, KV, list[KV]]]:
    """:func:`stage1` from the context's tokens (B, L): everything after the tokenizer."""
    B, L = s1.shape
    w = min(L, max_context)  # the transformer's window
    hidden = predictor.hidden(s1[:, L - w :], s2[:, L - w :], stamp[:, L - w :])  # (B, w, C)
    logits = predictor.s1_logits(hidden[:, -1]).float().cpu()  # (B, V1)
    kv = predictor.dependency_kv(hidden)  # (B, nh, w, hs)
    p = min(L + 1, max_context) - 1  # decoded window: last max_context of context + new token
    prefix = tokenizer.decode_prefix(s1[:, L - p :], s2[:, L - p :])
    out = []
    for b in range(B):
        one = slice(b, b + 1)
        out.append(
            (
                logits[b],
                hidden[one, -1],
                KV(kv.k[one], kv.v[one]),
                [KV(c.k[one], c.v[one]) for c in prefix],
            )
        )
    return out


class _Local:
    """A plain dict with the cache interface, for calls without a cache."""

    def __init__(self) -> None:
        self.items: dict[Hashable, torch.Tensor] = {}

    def get(self, key: Hashable) -> torch.Tensor | None:
        return self.items.get(key)

    def put(self, key: Hashable, value: torch.Tensor) -> torch.Tensor:
        self.items[key] = value
        return value


GROUP = 32  # windows per batched s2 / decode call


@torch.no_grad()
def sample_windows(
    predictor: Kronos,
    tokenizer: KronosTokenizer,
    windows: list[Stage1],
    keys: list[Hashable],
    config: dict,
    generators: list[torch.Generator],
    s2_logits_cache: Any = None,
    bar_cache: Any = None,
) -> np.ndarray:
    """Stage 2 for several windows: the mean decoded bar of each (len(windows), 6), z-scored.

    Window ``w`` draws, with its own generator, ``sample_count`` s1 tokens, then for each
    distinct s1 (ascending) as many s2 tokens as that s1 was drawn. s2 logits are computed once
    per ``(key, s1)`` and bars once per ``(key, s1, s2)``, batched over windows; the caches
    (``get``/``put``, e.g. :class:`objectives.cache.BoundedCache`) keep them across trials.
    """
    T, k, p, n = config["temperature"], config["top_k"], config["top_p"], config["sample_count"]
    s2_cache = _Local() if s2_logits_cache is None else s2_logits_cache
    bars_cache = _Local() if bar_cache is None else bar_cache

    s1_draws = []
    for window, generator in zip(windows, generators, strict=True):
        s1 = draw(filtered_probs(window.s1_logits[None], T, k, p)[0], n, generator)  # (n,)
        values, counts = torch.unique(s1, return_counts=True)  # sorted
        s1_draws.append(list(zip(values.tolist(), counts.tolist(), strict=True)))

    s2_logits = _batched(
        windows,
        [[(key, v) for v, _ in draws] for key, draws in zip(keys, s1_draws, strict=True)],
        s2_cache,
        lambda group, wanted: predictor.s2_logits(
            torch.cat([w.last_hidden for w in group]),
            KV(torch.cat([w.dep_kv.k for w in group]), torch.cat([w.dep_kv.v for w in group])),
            _padded([[s1 for _, s1 in want] for want in wanted], group[0].last_hidden.device),
        ),
        lambda w: w.dep_kv.k.shape[2],
    )  # per window: (m, V2)

    pair_lists: list[list[tuple[int, int, int]]] = []
    for draws, logits, generator in zip(s1_draws, s2_logits, generators, strict=True):
        probs2 = filtered_probs(logits, T, k, p)
        pairs = []
        for row, (v1, count) in enumerate(draws):
            values, counts = torch.unique(draw(probs2[row], count, generator), return_counts=True)
            pairs.extend(
                (v1, v2, c2) for v2, c2 in zip(values.tolist(), counts.tolist(), strict=True)
            )
        pair_lists.append(pairs)

    bars = _batched(
        windows,
        [[(key, a, b) for a, b, _ in pairs] for key, pairs in zip(keys, pair_lists, strict=True)],
        bars_cache,
        lambda group, wanted: tokenizer.decode_next(
            [
                KV(
                    torch.cat([w.prefix[j].k for w in group]),
                    torch.cat([w.prefix[j].v for w in group]),
                )
                for j in range(len(group[0].prefix))
            ],
            _padded([[a for _, a, _ in want] for want in wanted], group[0].last_hidden.device),
            _padded([[b for _, _, b in want] for want in wanted], group[0].last_hidden.device),
        ),
        lambda w: w.prefix[0].k.shape[2] if w.prefix else 0,
    )  # per window: (P, 6)

    out = np.empty((len(windows), bars[0].shape[-1] if bars else 6))
    for row, (pairs, rows) in enumerate(zip(pair_lists, bars, strict=True)):
        weights = torch.tensor([c for _, _, c in pairs], dtype=torch.float64)
        out[row] = ((weights[:, None] * rows.double()).sum(0) / n).numpy()
    return out


def _padded(lists: list[list[int]], device: torch.device) -> torch.Tensor:
    """Ragged token lists -> (B, M) int64, padded with token 0 (its results are dropped)."""
    width = max(len(x) for x in lists)
    return torch.tensor([x + [0] * (width - len(x)) for x in lists], device=device)


def _batched(
    windows: list[Stage1],
    keys: list[list[tuple]],
    cache: Any,
    compute: Callable[[list[Stage1], list[list[tuple]]], torch.Tensor],
    shape: Callable[[Stage1], int],
) -> list[torch.Tensor]:
    """Per window, one row per key: cached rows, the missing ones computed in padded batches
    of windows whose cached tensors have the same length."""
    missing: dict[int, list[int]] = {}
    for w, want in enumerate(keys):
        if any(cache.get(key) is None for key in want):
            missing.setdefault(shape(windows[w]), []).append(w)
    fresh: dict[tuple, torch.Tensor] = {}
    for group in missing.values():
        for at in range(0, len(group), GROUP):
            chunk = group[at : at + GROUP]
            wanted = [[key for key in keys[w] if cache.get(key) is None] for w in chunk]
            result = compute([windows[w] for w in chunk], wanted).float().cpu()  # (B, M, ·)
            for b, want in enumerate(wanted):
                for m, key in enumerate(want):
                    fresh[key] = cache.put(key, result[b, m].clone())
    out = []
    for want in keys:
        rows = [fresh.get(key) for key in want]
        rows = [
            row if row is not None else cache.get(key) for row, key in zip(rows, want, strict=True)
        ]
        out.append(torch.stack(rows))
    return out


def stage2(
    predictor: Kronos,
    tokenizer: KronosTokenizer,
    window: Stage1,
    key: Hashable,
    config: dict,
    generator: torch.Generator,
    s2_logits_cache: Any = None,
    bar_cache: Any = None,
) -> np.ndarray:
    """:func:`sample_windows` for one window: its mean decoded bar (6,), z-scored."""
    return sample_windows(
        predictor, tokenizer, [window], [key], config, [generator], s2_logits_cache, bar_cache
    )[0]
