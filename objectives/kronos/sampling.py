"""Token sampling with upstream Kronos semantics (``sample_from_logits``).

Logits are divided by the temperature; then, if ``top_k > 0``, only the ``top_k`` largest
(ties included) are kept and ``top_p`` is ignored; otherwise, if ``top_p < 1``, the smallest set
of tokens whose cumulative probability reaches ``top_p`` is kept (nucleus). The rest get
probability zero.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def filtered_probs(
    logits: torch.Tensor, temperature: float, top_k: int, top_p: float
) -> torch.Tensor:
    """(N, V) logits -> (N, V) sampling probabilities."""
    logits = logits / temperature
    if top_k > 0:
        k = min(max(top_k, 1), logits.shape[-1])
        kth = torch.topk(logits, k)[0][..., -1, None]  # (N, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    elif top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True)
        cumulative = torch.cumsum(F.softmax(sorted_logits, dim=-1), dim=-1)
        drop_sorted = cumulative > top_p
        # keep the first token that crosses the threshold too
        drop_sorted[..., 1:] = drop_sorted[..., :-1].clone()
        drop_sorted[..., 0] = False
        drop = drop_sorted.scatter(1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return F.softmax(logits, dim=-1)


def draw(probs: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` independent draws (n,) int64 from one (V,) distribution."""
    return torch.multinomial(probs, n, replacement=True, generator=generator)
