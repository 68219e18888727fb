"""Stage 2 of a Kronos path of more than one step, as upstream's ``auto_regressive_inference``.

Upstream generates ``sample_count`` paths: at step ``j`` the transformer reads the last
``max_context`` tokens of context + the path so far (with their time features, the future ones
from the wrapper's timestamps), samples s1 then s2, and at the end decodes the last
``max_context`` tokens of context + path and averages the decoded bars over the paths.

Step 1 reads the cached stage-1 pass. Later steps depend on the sampled tokens, so they run per
trial; identical paths are run once (with their count), in fixed-size batches whose make-up
depends only on this window's draws. The window slides once context + path exceeds
``max_context`` (the trading code's ``lookback = max_context`` makes it slide from step 2), and
a slid window changes every hidden state, so each step re-runs the whole window, as upstream
does; a key/value cache would be exact only while the window does not slide.
"""

from __future__ import annotations

import numpy as np
import torch

from models.kronos import Kronos, KronosTokenizer
from models.kronos.layers import KV
from objectives.kronos.sampling import draw, filtered_probs
from objectives.kronos.space import KronosSettings
from objectives.kronos.stages import Stage1

BATCH = 16  # paths per transformer call (a function of the window's draws only)

Path = tuple[tuple[int, int], ...]


def _extend(
    predictor: Kronos,
    logits1: torch.Tensor,
    last_hidden: torch.Tensor,
    dep_kv: KV,
    path: Path,
    count: int,
    settings: KronosSettings,
    generator: torch.Generator,
) -> list[tuple[Path, int]]:
    """``count`` draws of the next (s1, s2) after ``path``: each distinct one with its count."""
    T, k, p = settings.temperature, settings.top_k, settings.top_p
    s1 = draw(filtered_probs(logits1[None], T, k, p)[0], count, generator)
    values, counts = torch.unique(s1, return_counts=True)
    device = last_hidden.device
    logits2 = predictor.s2_logits(last_hidden, dep_kv, values[None].to(device))[0].float().cpu()
    probs2 = filtered_probs(logits2, T, k, p)
    out = []
    for row, (v1, c1) in enumerate(zip(values.tolist(), counts.tolist(), strict=True)):
        v2s, c2s = torch.unique(draw(probs2[row], c1, generator), return_counts=True)
        out.extend(
            ((*path, (v1, v2)), c2) for v2, c2 in zip(v2s.tolist(), c2s.tolist(), strict=True)
        )
    return out


@torch.no_grad()
def sample_paths(
    predictor: Kronos,
    tokenizer: KronosTokenizer,
    window: Stage1,
    settings: KronosSettings,
    generator: torch.Generator,
    future_stamp: torch.Tensor,
    max_context: int,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Distinct decoded paths ``(P, H, 6)`` float64 (z-scored), their counts ``(P,)`` and the
    transformer rows run; ``future_stamp`` is ``(1, H, 5)``."""
    assert window.context is not None, "stage 1 of a path keeps the context's tokens"
    s1_ctx, s2_ctx, stamp_ctx = window.context  # (1, L), (1, L), (1, L, 5)
    horizon = future_stamp.shape[1]
    L = s1_ctx.shape[1]
    device = window.last_hidden.device
    paths = _extend(
        predictor, window.s1_logits, window.last_hidden, window.dep_kv, (),
        settings.sample_count, settings, generator,
    )  # fmt: skip
    rows_run = 0
    full_stamp = torch.cat([stamp_ctx, future_stamp.to(stamp_ctx.device)], dim=1)
    for step in range(1, horizon):
        start = max(0, L + step - max_context)
        stamp = full_stamp[:, start : L + step]  # (1, w, 5)
        grown: list[tuple[Path, int]] = []
        for first in range(0, len(paths), BATCH):
            chunk = paths[first : first + BATCH]
            new1 = torch.tensor([[a for a, _ in path] for path, _ in chunk], device=device)
            new2 = torch.tensor([[b for _, b in path] for path, _ in chunk], device=device)
            B = len(chunk)
            s1 = torch.cat([s1_ctx.expand(B, L), new1], dim=1)[:, start:]
            s2 = torch.cat([s2_ctx.expand(B, L), new2], dim=1)[:, start:]
            hidden = predictor.hidden(s1, s2, stamp.expand(B, *stamp.shape[1:]))  # (B, w, C)
            rows_run += B
            logits = predictor.s1_logits(hidden[:, -1]).float().cpu()  # (B, V1)
            kv = predictor.dependency_kv(hidden)
            for b, (path, count) in enumerate(chunk):
                one = slice(b, b + 1)
                grown.extend(
                    _extend(
                        predictor, logits[b], hidden[one, -1], KV(kv.k[one], kv.v[one]),
                        path, count, settings, generator,
                    )
                )  # fmt: skip
        paths = grown
    bars = []
    for first in range(0, len(paths), BATCH):
        chunk = paths[first : first + BATCH]
        s1 = torch.tensor([[a for a, _ in path] for path, _ in chunk], device=device)
        s2 = torch.tensor([[b for _, b in path] for path, _ in chunk], device=device)
        bars.append(tokenizer.decode_paths(window.prefix, s1, s2).double().cpu().numpy())
    counts = np.array([c for _, c in paths], dtype=np.float64)
    return np.concatenate(bars), counts, rows_run
