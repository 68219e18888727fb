"""Toto's causal patch scaler: each patch is normalised by the mean and standard deviation of
everything up to the end of that patch (Welford in float64, padding excluded), optionally
clamped to a band around the whole context's scale."""

from __future__ import annotations

import torch

MINIMUM_SCALE = 0.1


def causal_patch_stats(
    series: torch.Tensor,
    padding_mask: torch.Tensor,
    patch_size: int,
    stabilize_with_global: bool = True,
    scale_factor_exponent: float = 10.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-patch ``(loc, scale)``, each ``(B, V, T // patch_size)`` in ``series.dtype``.

    ``series`` and ``padding_mask`` are ``(B, V, T)``; ``padding_mask`` is True on real values.
    """
    x = series.to(torch.float64)  # (B, V, T)
    w = padding_mask.to(torch.float64)  # (B, V, T)
    count = torch.cumsum(w, dim=-1).clamp_min(1.0)  # (B, V, T)
    mean = torch.cumsum(w * x, dim=-1) / count  # causal mean at every step
    previous = torch.cat([torch.zeros_like(mean[..., :1]), mean[..., :-1]], dim=-1)
    m2 = torch.cumsum((x - previous) * (x - mean) * w, dim=-1)  # Welford's running sum
    variance = m2 / (count - 1.0).clamp_min(1.0)  # Bessel-corrected
    scale = torch.sqrt(variance + MINIMUM_SCALE)  # (B, V, T)
    if stabilize_with_global:
        total = w.sum(-1, keepdim=True).clamp_min(1.0)  # (B, V, 1)
        global_mean = torch.nan_to_num((w * x).sum(-1, keepdim=True) / total)
        global_var = (((x - global_mean) * w) ** 2).sum(-1, keepdim=True) / total
        global_scale = torch.sqrt(global_var + MINIMUM_SCALE)  # (B, V, 1)
        low = (global_scale * 10.0 ** (-scale_factor_exponent)).clamp_min(MINIMUM_SCALE)
        scale = torch.minimum(torch.maximum(scale, low), global_scale * 10.0**scale_factor_exponent)
    last = slice(patch_size - 1, None, patch_size)  # the last step of every patch
    return mean[..., last].to(series.dtype), scale[..., last].to(series.dtype)


def scale_patches(
    series: torch.Tensor, loc: torch.Tensor, scale: torch.Tensor, patch_size: int
) -> torch.Tensor:
    """``(series - loc) / scale`` with per-patch ``loc``/``scale`` ``(B, V, P)`` spread over
    the patch's steps; returns ``(B, V, T)``."""
    loc = loc.repeat_interleave(patch_size, dim=-1)  # (B, V, T)
    scale = scale.repeat_interleave(patch_size, dim=-1)
    return (series - loc) / scale
