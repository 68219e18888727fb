"""The mixture-of-Student-t output head, and an exact, seeded sampler for its marginals.

The head maps a hidden vector to ``k`` components: mixture weights (softmax), degrees of
freedom ``2 + softplus``, locations, and scales ``softplus`` (both clamped at machine eps).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from models.threads import one_thread


class Mixture(NamedTuple):
    """Parameters of Student-t mixtures; each tensor ``(..., k)``."""

    weights: torch.Tensor
    df: torch.Tensor
    loc: torch.Tensor
    scale: torch.Tensor


class MixtureOfStudentTsHead(nn.Module):
    """Linear projections from the hidden state to the mixture's parameters."""

    def __init__(self, embed_dim: int, k_components: int) -> None:
        super().__init__()
        self.df = nn.Linear(embed_dim, k_components)
        self.loc_proj = nn.Linear(embed_dim, k_components)
        self.scale_proj = nn.Linear(embed_dim, k_components)
        self.mixture_weights = nn.Linear(embed_dim, k_components)

    def forward(self, hidden: torch.Tensor) -> Mixture:
        """On one thread: ``k`` output columns are narrow, and a checkpoint with fewer patch
        rows than ``k`` would get thread-dependent last bits from MKL (:mod:`models.threads`;
        the published ``k`` of 24 and the tiny preset's 8 measured unaffected)."""
        eps = torch.finfo(hidden.dtype).eps
        with one_thread():
            return Mixture(
                weights=F.softmax(self.mixture_weights(hidden), dim=-1),  # (..., k)
                df=2.0 + F.softplus(self.df(hidden)).clamp_min(eps),
                loc=self.loc_proj(hidden),
                scale=F.softplus(self.scale_proj(hidden)).clamp_min(eps),
            )


GAMMA_TRIES = 1  # Marsaglia-Tsang proposals per sample drawn up front (each accepts >= 95%)
RESERVE_TRIES = 4  # proposals in each reserve block, for samples whose first tries all failed


def _gamma_from_proposals(
    d: torch.Tensor, x: torch.Tensor, u: torch.Tensor, dim: int = -1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Marsaglia and Tsang (2000) for Gamma(d + 1/3), ``d >= 2/3``: proposals ``x ~ N(0, 1)``
    and ``u ~ U(0, 1)`` have the tries along ``dim``, ``d`` the same shape without it.

    Returns the first accepted draw (shape of ``d``) and whether any proposal was accepted.
    """
    dd = d.unsqueeze(dim)
    root = 1.0 + x * torch.rsqrt(9.0 * dd)  # (..., tries, ...)
    v = root * root * root
    log_v = 3.0 * torch.log(root.clamp_min(torch.finfo(root.dtype).tiny))
    ok = (root > 0) & (torch.log(u) < 0.5 * x * x + dd * (1.0 - v + log_v))
    values, accepted = (dd * v).unbind(dim), ok.unbind(dim)
    value, any_ok = values[-1], accepted[-1]
    for candidate, good in zip(values[-2::-1], accepted[-2::-1], strict=True):
        value = torch.where(good, candidate, value)  # the first accepted proposal wins
        any_ok = any_ok | good
    return value, any_ok


def sample_mixtures(
    mixture: Mixture,
    num_samples: int,
    generators: list[torch.Generator],
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """``num_samples`` draws from each of ``W`` mixtures (tensors ``(W, k)``); returns
    ``(W, N)`` in ``dtype``. Row ``w`` uses only ``generators[w]``, so its draws do not depend
    on the other rows.

    Exact: pick a component by weight, then ``loc + scale * z * sqrt(df / (2 G))`` with
    ``z ~ N(0, 1)`` and ``G ~ Gamma(df / 2)`` (``df > 2``, so Marsaglia-Tsang applies directly).
    Each sample takes the first accepted of its own proposals: ``GAMMA_TRIES`` up front, then,
    in the rare case all fail, the row's next unused reserve block, then (astronomically
    rarely) fresh proposals from the row's generator. All random numbers are drawn per row in
    a fixed order, so the work stays batched without tying rows together.
    """
    weights, df, loc, scale = (t.to(dtype) for t in mixture)
    rows, device = weights.shape[0], weights.device
    reserve = 32 + num_samples // 16  # blocks per row; ~N/20 needed at worst (df = 2)
    # per row: [z, x_1..x_T] normals and [pick, u_1..u_T] uniforms, samples contiguous
    normals = torch.empty(rows, 1 + GAMMA_TRIES, num_samples, dtype=dtype, device=device)
    uniforms = torch.empty_like(normals)
    spare_x = torch.empty(rows, reserve, RESERVE_TRIES, dtype=dtype, device=device)
    spare_u = torch.empty_like(spare_x)
    for row, generator in enumerate(generators):
        for buffer, draw in (
            (normals, torch.randn),
            (uniforms, torch.rand),
            (spare_x, torch.randn),
            (spare_u, torch.rand),
        ):
            draw(buffer[row].shape, generator=generator, out=buffer[row], dtype=dtype)
    cumulative = torch.cumsum(weights, dim=-1)  # (W, k)
    pick = uniforms[:, 0] * cumulative[:, -1:]  # (W, N)
    component = torch.searchsorted(cumulative, pick, right=True).clamp_max_(df.shape[-1] - 1)
    nu = df.gather(-1, component)  # (W, N)
    d = 0.5 * nu - 1.0 / 3.0
    gamma, accepted = _gamma_from_proposals(d, normals[:, 1:], uniforms[:, 1:], dim=1)
    failed = ~accepted
    rows_idx, cols_idx = failed.nonzero(as_tuple=True)  # one device sync per call
    if len(rows_idx):
        rank = (torch.cumsum(failed, dim=-1) - 1)[rows_idx, cols_idx]  # order within its row
        block = rank.clamp_max(reserve - 1)
        value, ok = _gamma_from_proposals(
            d[rows_idx, cols_idx], spare_x[rows_idx, block], spare_u[rows_idx, block]
        )
        ok &= rank < reserve
        gamma[rows_idx[ok], cols_idx[ok]] = value[ok]
        still = (~ok).nonzero().flatten().tolist()
        for row, column in zip(rows_idx[still].tolist(), cols_idx[still].tolist(), strict=True):
            gamma[row, column] = _redraw_gamma(d[row, column].reshape(1), generators[row])[0]
    t = normals[:, 0] * torch.sqrt(nu / (2.0 * gamma))  # (W, N) standard Student-t
    return loc.gather(-1, component) + scale.gather(-1, component) * t


def _redraw_gamma(d: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Gamma draws for the entries of ``d`` ``(n,)``, proposing until each is accepted."""
    out = torch.empty_like(d)
    todo = torch.arange(len(d), device=d.device)
    while len(todo):
        shape = (len(todo), GAMMA_TRIES)
        x = torch.randn(shape, generator=generator, dtype=d.dtype, device=d.device)
        u = torch.rand(shape, generator=generator, dtype=d.dtype, device=d.device)
        value, ok = _gamma_from_proposals(d[todo], x, u)
        out[todo[ok]] = value[ok]
        todo = todo[~ok]
    return out
