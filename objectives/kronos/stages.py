"""The two stages of a Kronos one-step forecast, with upstream's inputs and truncation.

Upstream (``KronosPredictor.predict`` with ``pred_len=1``) z-scores the whole context it is
given, clips it, tokenises all of it, runs the transformer on the last ``max_context`` tokens
with their time features, samples s1 then s2 (``sample_count`` times), decodes the last
``max_context`` tokens of context + new token, averages the decoded bars over the samples and
un-normalises them. Stage 1 (:func:`stage1`) does everything that does not depend on sampling;
stage 2 (:func:`stage2`) samples and decodes each distinct token once.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass

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
    B, L, _ = x.shape
    s1, s2 = tokenizer.encode(x)  # (B, L) each
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


Cache = Callable[[Hashable, Callable[[], torch.Tensor]], torch.Tensor]


@torch.no_grad()
def stage2(
    predictor: Kronos,
    tokenizer: KronosTokenizer,
    window: Stage1,
    key: Hashable,
    config: dict,
    generator: torch.Generator,
    s2_logits_cache: dict | None = None,
    bar_cache: dict | None = None,
) -> np.ndarray:
    """Sample ``sample_count`` tokens for one window; return the mean decoded bar (6,), z-scored.

    ``s2_logits_cache`` and ``bar_cache`` are mapping-like (``get``/``put``) caches keyed by
    ``(key, s1)`` and ``(key, s1, s2)``; ``None`` computes without caching.
    """
    T, k, p, n = config["temperature"], config["top_k"], config["top_p"], config["sample_count"]
    device = window.last_hidden.device

    s1 = draw(filtered_probs(window.s1_logits[None], T, k, p)[0], n, generator)  # (n,)
    s1_values, s1_counts = torch.unique(s1, return_counts=True)  # (m,), sorted

    s2_logits = _cached_rows(
        [(key, int(v)) for v in s1_values],
        s2_logits_cache,
        lambda todo: (
            predictor.s2_logits(
                window.last_hidden,
                window.dep_kv,
                torch.tensor([s for _, s in todo], device=device),
            )
            .float()
            .cpu()
        ),
    )  # (m, V2)
    probs2 = filtered_probs(s2_logits, T, k, p)

    pair_counts: dict[tuple[int, int], int] = {}
    for row, (value, count) in enumerate(zip(s1_values.tolist(), s1_counts.tolist(), strict=True)):
        s2_values, s2_counts = torch.unique(draw(probs2[row], count, generator), return_counts=True)
        for v2, c2 in zip(s2_values.tolist(), s2_counts.tolist(), strict=True):
            pair_counts[(value, v2)] = c2

    pairs = list(pair_counts)
    bars = _cached_rows(
        [(key, a, b) for a, b in pairs],
        bar_cache,
        lambda todo: (
            tokenizer.decode_next(
                window.prefix,
                torch.tensor([a for _, a, _ in todo], device=device),
                torch.tensor([b for _, _, b in todo], device=device),
            )
            .float()
            .cpu()
        ),
    )  # (P, 6)
    weights = torch.tensor([pair_counts[pair] for pair in pairs], dtype=torch.float64)
    return ((weights[:, None] * bars.double()).sum(0) / n).numpy()


def _cached_rows(
    keys: list[tuple], cache: dict | None, compute: Callable[[list[tuple]], torch.Tensor]
) -> torch.Tensor:
    """Stack one row per key, computing the missing rows in one batch."""
    if cache is None:
        return compute(keys)
    found = {key: cache.get(key) for key in keys}
    todo = [key for key, row in found.items() if row is None]
    if todo:
        for key, row in zip(todo, compute(todo), strict=True):
            found[key] = cache.put(key, row.clone())
    return torch.stack([found[key] for key in keys])
