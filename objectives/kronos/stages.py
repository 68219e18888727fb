"""The two stages of a Kronos one-step forecast, with upstream's inputs and truncation.

Upstream (``KronosPredictor.predict`` with ``pred_len=1``) z-scores the whole context it is
given, clips it, tokenises all of it, runs the transformer on the last ``max_context`` tokens
with their time features, samples s1 then s2 (``sample_count`` times), decodes the last
``max_context`` tokens of context + new token, averages the decoded bars over the samples and
un-normalises them. Stage 1 (the tokenizer, then :func:`stage1_tokens`) does everything that
does not depend on sampling; stage 2 (:func:`sample_window`) samples and decodes each distinct
token once.

For ``pred_len=1`` upstream's transformer sees only the context's time features (the target's
stamp would only be read for a second step), so the target's timestamp is not needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from models.kronos import Kronos, KronosTokenizer
from models.kronos.layers import KV
from models.threads import one_thread
from objectives.kronos.sampling import draw, filtered_probs
from objectives.kronos.space import KronosSettings

STD_EPS = 1e-5  # upstream: (x - mean) / (std + 1e-5)


def features(
    prices: np.ndarray,
    volume: np.ndarray | None,
    amount: np.ndarray | None,
    amount_fill: str = "mean",
) -> np.ndarray:
    """(N, 4) OHLC + volume/amount -> (N, 6) float32 open, high, low, close, volume, amount.

    No volume means zero volume and amount. No amount means volume x mean price (upstream,
    ``amount_fill="mean"``) or volume x close (the trading code's wrapper, ``"close"``).
    """
    n = len(prices)
    if volume is None:
        volume, amount = np.zeros(n), np.zeros(n)
    elif amount is None:
        amount = volume * (prices[:, 3] if amount_fill == "close" else prices.mean(axis=1))
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
class StepContext:
    """The context part of a later path step's window: per decoder block, its keys and values
    ``(1, nh, L - start, hs)``, and the s2 layer's keys and values of its hidden states."""

    blocks: list[KV]
    dep_kv: KV


@dataclass(frozen=True)
class Stage1:
    """What one window needs for any sampling setting (tensors on the model's device)."""

    s1_logits: torch.Tensor  # (V1,) float32, on the CPU
    last_hidden: torch.Tensor  # (1, C)
    dep_kv: KV  # (1, nh, W, hs) keys/values of the s2 layer
    prefix: list[KV]  # per decoder block: (1, nh, P, hs) for the tokens before the new ones
    mean: np.ndarray  # (6,) float32
    std: np.ndarray  # (6,) float32
    #: for paths of more than one step: the context's tokens (1, L) and time features (1, L, 5)
    context: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
    #: ... and the context part of every later step's window, by its first context token
    steps: dict[int, StepContext] = field(default_factory=dict)
    #: the s2 logits after every s1 token ``(V1, V2)`` (:func:`s2_table`); ``None``: computed
    #: when sampled (an entry of the disk cache written before the table was kept)
    table: torch.Tensor | None = None


@torch.no_grad()
def stage1_tokens(
    predictor: Kronos,
    tokenizer: KronosTokenizer,
    s1: torch.Tensor,
    s2: torch.Tensor,
    stamp: torch.Tensor,
    max_context: int,
    horizon: int = 1,
) -> list[tuple[torch.Tensor, torch.Tensor, KV, list[KV]]]:
    """Stage 1 from the context's tokens (B, L), time features (B, L, 5): everything after the
    tokenizer, per window (s1_logits, last_hidden, dep_kv, prefix); see :class:`Stage1`.

    The decoder prefix is the context part of the window upstream decodes at the end of a
    ``horizon``-step path: the last ``max_context`` tokens of context + path."""
    B, L = s1.shape
    w = min(L, max_context)  # the transformer's window
    hidden = predictor.hidden(s1[:, L - w :], s2[:, L - w :], stamp[:, L - w :])  # (B, w, C)
    logits = predictor.s1_logits(hidden[:, -1]).float().cpu()  # (B, V1)
    kv = predictor.dependency_kv(hidden)  # (B, nh, w, hs)
    p = min(L + horizon, max_context) - horizon  # decoded: last max_context of context + path
    prefix = tokenizer.decode_prefix(s1[:, L - p :], s2[:, L - p :])
    out = []
    for b in range(B):
        one = slice(b, b + 1)
        out.append(
            (
                logits[b].clone(),  # a copy: a view would keep the batch's tensor alive
                hidden[one, -1].clone(),  # ... and here the whole (w, C) hidden states
                KV(kv.k[one], kv.v[one]),
                [KV(c.k[one], c.v[one]) for c in prefix],
            )
        )
    return out


@torch.no_grad()
def s2_table(predictor: Kronos, window: Stage1) -> torch.Tensor:
    """The s2 logits after every s1 token of the window's next position, ``(V1, V2)`` float32
    on the CPU: one call of a fixed shape (all ``2**s1_bits`` candidates, on one thread), so a
    row does not depend on which tokens a trial drew and the table can be cached per window."""
    v1 = predictor.embedding.emb_s1.num_embeddings
    every = torch.arange(v1, device=window.last_hidden.device)[None]  # (1, V1)
    with one_thread():
        return predictor.s2_logits(window.last_hidden, window.dep_kv, every)[0].float().cpu()


def table_of(predictor: Kronos, window: Stage1) -> torch.Tensor:
    """The window's s2 table: the one stage 1 kept, else computed now (the same bits)."""
    return s2_table(predictor, window) if window.table is None else window.table


def sample_window(
    predictor: Kronos,
    tokenizer: KronosTokenizer,
    window: Stage1,
    settings: KronosSettings,
    generator: torch.Generator,
    table: torch.Tensor | None = None,
) -> np.ndarray:
    """Stage 2 for one window: its mean decoded bar (6,), z-scored, as upstream averages it."""
    bars, counts = sample_window_draws(predictor, tokenizer, window, settings, generator, table)
    return (counts[:, None] * bars).sum(0) / counts.sum()


@torch.no_grad()
def sample_window_draws(
    predictor: Kronos,
    tokenizer: KronosTokenizer,
    window: Stage1,
    settings: KronosSettings,
    generator: torch.Generator,
    table: torch.Tensor | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Stage 2 for one window: the distinct decoded bars ``(P, 6)`` float64, z-scored, and how
    many of the ``sample_count`` draws gave each ``(P,)``.

    Draws ``sample_count`` s1 tokens, then for each distinct s1 (ascending) as many s2 tokens as
    that s1 was drawn, all from ``generator``. The s2 logits are rows of the window's
    :func:`s2_table` (``table``, else the window's own, else computed here) and the distinct
    (s1, s2) pairs
    are decoded in one call whose shape depends only on this window's draws, so the result is
    the same whatever else is being scored.
    """
    T, k, p = settings.temperature, settings.top_k, settings.top_p
    n = settings.sample_count
    device = window.last_hidden.device
    s1 = draw(filtered_probs(window.s1_logits[None], T, k, p)[0], n, generator)  # (n,)
    s1_values, s1_counts = torch.unique(s1, return_counts=True)  # sorted, (m,) each
    table = table_of(predictor, window) if table is None else table
    logits2 = table[s1_values]  # (m, V2)
    probs2 = filtered_probs(logits2, T, k, p)
    pairs: list[tuple[int, int, int]] = []
    for row, (v1, count) in enumerate(zip(s1_values.tolist(), s1_counts.tolist(), strict=True)):
        values, counts = torch.unique(draw(probs2[row], count, generator), return_counts=True)
        pairs.extend((v1, v2, c2) for v2, c2 in zip(values.tolist(), counts.tolist(), strict=True))
    first = torch.tensor([[a for a, _, _ in pairs]], device=device)  # (1, P)
    second = torch.tensor([[b for _, b, _ in pairs]], device=device)  # (1, P)
    bars = tokenizer.decode_next(window.prefix, first, second)[0].double().cpu()  # (P, 6)
    counts = np.array([c for _, _, c in pairs], dtype=np.float64)  # (P,), sums to n
    return bars.numpy(), counts
