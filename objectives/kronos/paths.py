"""Stage 2 of a Kronos path of more than one step, as upstream's ``auto_regressive_inference``.

Upstream generates ``sample_count`` paths: at step ``j`` the transformer reads the last
``max_context`` tokens of context + the path so far (with their time features, the future ones
from the wrapper's timestamps), samples s1 then s2, and at the end decodes the last
``max_context`` tokens of context + path and averages the decoded bars over the paths.

Step 1 reads the cached stage-1 pass. Later steps depend on the sampled tokens, so they run per
trial; identical paths are run once (with their count), in fixed-size batches whose make-up
depends only on this window's draws.

The window slides once context + path exceeds ``max_context`` (the trading code's ``lookback =
max_context`` makes it slide from step 2), so step ``j`` reads context tokens ``[start_j, L)``
then the path's ``j`` tokens. Attention is causal: the hidden states of that context part are
the same for every path and every trial, so :func:`step_contexts` computes each distinct
context part once, in stage 1 (its blocks' keys and values and the s2 layer's), and a trial
runs only the path's ``j`` positions against them (a key/value cache per slid window) instead
of re-running the whole window per path and step as upstream does. The result is upstream's up
to float rounding of the split attention.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from models.kronos import Kronos, KronosTokenizer
from models.kronos.layers import KV
from objectives.kronos.sampling import draw, filtered_probs
from objectives.kronos.space import KronosSettings
from objectives.kronos.stages import Stage1, StepContext, table_of

BATCH = 16  # paths per transformer call (a function of the window's draws only)

Path = tuple[tuple[int, int], ...]
#: (step, first context token, the chunk's path tokens s1 and s2 (B, step)) -> the s1 logits
#: (B, V1) and hidden state (B, C) of each path's last position, and its s2 layer's keys/values
RunChunk = Callable[[int, int, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor, KV]]


def _extend(
    predictor: Kronos,
    logits1: torch.Tensor,
    last_hidden: torch.Tensor,
    dep_kv: KV,
    chunk: Sequence[tuple[Path, int]],
    settings: KronosSettings,
    generator: torch.Generator,
    table: torch.Tensor | None = None,
) -> list[tuple[Path, int]]:
    """The next (s1, s2) of every path of ``chunk`` (s1 logits ``(B, V1)``, hidden ``(B, C)``,
    s2-layer keys/values of each), each distinct extension once with its count.

    Draws every path's s1 tokens (``count`` each, in chunk order), scores the s2 logits of all
    the chunk's distinct (path, s1) in one call (padded to the widest path; each candidate is
    scored alone), or, for the first step (one path, the window's own position), reads them from
    the window's :func:`~objectives.kronos.stages.s2_table` ``table``; then draws the s2 tokens
    path by path, s1 by s1."""
    T, k, p = settings.temperature, settings.top_k, settings.top_p
    probs1 = filtered_probs(logits1, T, k, p)  # (B, V1)
    drawn = [
        torch.unique(draw(probs1[b], count, generator), return_counts=True)
        for b, (_, count) in enumerate(chunk)
    ]
    widest = max(len(values) for values, _ in drawn)
    padded = torch.stack([torch.cat([v, v[:1].expand(widest - len(v))]) for v, _ in drawn])
    if table is not None:
        assert len(chunk) == 1, "the s2 table is the first step's, one path"
        logits2 = table[padded]  # (1, widest, V2)
    else:
        logits2 = predictor.s2_logits(last_hidden, dep_kv, padded.to(last_hidden.device))
        logits2 = logits2.float().cpu()  # (B, widest, V2)
    probs2 = filtered_probs(logits2.flatten(0, 1), T, k, p).view(logits2.shape)
    out: list[tuple[Path, int]] = []
    for b, ((path, _), (values, counts)) in enumerate(zip(chunk, drawn, strict=True)):
        for m, (v1, c1) in enumerate(zip(values.tolist(), counts.tolist(), strict=True)):
            v2s, c2s = torch.unique(draw(probs2[b, m], c1, generator), return_counts=True)
            pairs = zip(v2s.tolist(), c2s.tolist(), strict=True)
            out.extend(((*path, (v1, v2)), c2) for v2, c2 in pairs)
    return out


def step_starts(length: int, max_context: int, horizon: int) -> dict[int, int]:
    """Step ``j`` (1..H-1) -> the first context token its window reads."""
    return {j: max(0, length + j - max_context) for j in range(1, horizon)}


@torch.no_grad()
def step_contexts(
    predictor: Kronos,
    s1: torch.Tensor,
    s2: torch.Tensor,
    stamp: torch.Tensor,
    max_context: int,
    horizon: int,
) -> dict[int, StepContext]:
    """The context part of every later step's window, keyed by its first token: blocks' and s2
    layer's keys/values of context tokens ``[start, L)`` (one pass per distinct start)."""
    L = s1.shape[1]
    if max_context <= horizon - 1:
        raise ValueError(f"max_context {max_context} leaves no context for a {horizon}-step path")
    out: dict[int, StepContext] = {}
    for start in sorted(set(step_starts(L, max_context, horizon).values())):
        hidden, blocks = predictor.hidden_cached(s1[:, start:], s2[:, start:], stamp[:, start:])
        out[start] = StepContext(blocks, predictor.dependency_kv(hidden))
    return out


def _expand(kv: KV, batch: int) -> KV:
    return KV(kv.k.expand(batch, -1, -1, -1), kv.v.expand(batch, -1, -1, -1))


def _grow(
    predictor: Kronos,
    tokenizer: KronosTokenizer,
    window: Stage1,
    settings: KronosSettings,
    generator: torch.Generator,
    horizon: int,
    max_context: int,
    run_chunk: RunChunk,
    table: torch.Tensor | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """The paths grown step by step, ``run_chunk`` giving each chunk's next-token inputs; the
    first step's s2 logits are rows of the window's ``table`` (computed if not given)."""
    assert window.context is not None, "stage 1 of a path keeps the context's tokens"
    device = window.last_hidden.device
    first = [((), settings.sample_count)]
    table = table_of(predictor, window) if table is None else table
    paths = _extend(predictor, window.s1_logits[None], window.last_hidden, window.dep_kv,
                    first, settings, generator, table)  # fmt: skip
    rows_run = 0
    for step, start in step_starts(window.context[0].shape[1], max_context, horizon).items():
        grown: list[tuple[Path, int]] = []
        for at in range(0, len(paths), BATCH):
            chunk = paths[at : at + BATCH]
            new1 = torch.tensor([[a for a, _ in path] for path, _ in chunk], device=device)
            new2 = torch.tensor([[b for _, b in path] for path, _ in chunk], device=device)
            logits, last, kv = run_chunk(step, start, new1, new2)
            rows_run += len(chunk)
            grown.extend(_extend(predictor, logits, last, kv, chunk, settings, generator))
        paths = grown
    counts = np.array([c for _, c in paths], dtype=np.float64)
    return _decode(tokenizer, window, paths), counts, rows_run


def _decode(
    tokenizer: KronosTokenizer, window: Stage1, paths: list[tuple[Path, int]]
) -> np.ndarray:
    """The distinct paths decoded after the window's decoder prefix, ``(P, H, 6)`` float64."""
    device = window.last_hidden.device
    bars = []
    for at in range(0, len(paths), BATCH):
        chunk = paths[at : at + BATCH]
        s1 = torch.tensor([[a for a, _ in path] for path, _ in chunk], device=device)
        s2 = torch.tensor([[b for _, b in path] for path, _ in chunk], device=device)
        bars.append(tokenizer.decode_paths(window.prefix, s1, s2).double().cpu().numpy())
    return np.concatenate(bars)


@torch.no_grad()
def sample_paths(
    predictor: Kronos,
    tokenizer: KronosTokenizer,
    window: Stage1,
    settings: KronosSettings,
    generator: torch.Generator,
    future_stamp: torch.Tensor,
    max_context: int,
    table: torch.Tensor | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Distinct decoded paths ``(P, H, 6)`` float64 (z-scored), their counts ``(P,)`` and the
    path rows run against the cached context windows; ``future_stamp`` is ``(1, H, 5)``;
    ``table``: the window's s2 table, if cached."""
    future_stamp = future_stamp.to(window.last_hidden.device)

    def run_chunk(step: int, start: int, new1: torch.Tensor, new2: torch.Tensor):
        B, context = new1.shape[0], window.steps[start]
        stamp = future_stamp[:, :step].expand(B, -1, -1)  # (B, step, 5)
        hidden, _ = predictor.hidden_cached(new1, new2, stamp, context.blocks)  # (B, step, C)
        own, shared = predictor.dependency_kv(hidden), _expand(context.dep_kv, B)
        kv = KV(torch.cat([shared.k, own.k], dim=2), torch.cat([shared.v, own.v], dim=2))
        return predictor.s1_logits(hidden[:, -1]).float().cpu(), hidden[:, -1], kv

    horizon = future_stamp.shape[1]
    return _grow(predictor, tokenizer, window, settings, generator, horizon, max_context,
                 run_chunk, table)  # fmt: skip


@torch.no_grad()
def full_window_paths(
    predictor: Kronos,
    tokenizer: KronosTokenizer,
    window: Stage1,
    settings: KronosSettings,
    generator: torch.Generator,
    future_stamp: torch.Tensor,
    max_context: int,
) -> tuple[np.ndarray, np.ndarray, int]:
    """:func:`sample_paths` computed as upstream does, re-running the whole window of every
    distinct path at every step (the rows run are whole windows): the reference the cached
    windows are tested and benchmarked against."""
    assert window.context is not None, "stage 1 of a path keeps the context's tokens"
    s1_ctx, s2_ctx, stamp_ctx = window.context
    L = s1_ctx.shape[1]
    full_stamp = torch.cat([stamp_ctx, future_stamp.to(stamp_ctx.device)], dim=1)

    def run_chunk(step: int, start: int, new1: torch.Tensor, new2: torch.Tensor):
        B = new1.shape[0]
        s1 = torch.cat([s1_ctx.expand(B, L), new1], dim=1)[:, start:]
        s2 = torch.cat([s2_ctx.expand(B, L), new2], dim=1)[:, start:]
        stamp = full_stamp[:, start : L + step].expand(B, -1, -1)
        hidden = predictor.hidden(s1, s2, stamp)  # (B, w, C)
        logits = predictor.s1_logits(hidden[:, -1]).float().cpu()
        return logits, hidden[:, -1], predictor.dependency_kv(hidden)

    horizon = future_stamp.shape[1]
    return _grow(predictor, tokenizer, window, settings, generator, horizon, max_context,
                 run_chunk)  # fmt: skip
