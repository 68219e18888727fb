"""The Toto backend: one loaded model; evaluators bound to a symbol's bars.

See docs/design-notes.md, "Two-stage evaluation".

The context of target row ``i`` is the closes of rows ``[max(0, i - max_context), i)``, left
padded to a multiple of the patch size with a padding mask, as upstream's forecaster does.

* Stage 1 (model, cached): one forward pass per window, each window alone (a batch of one,
  so no result depends on which other windows, or how many, were computed with it: batched
  matrix products differ in the last bits with the batch's shape), gives the step-1 marginal of
  the next patch: a Student-t mixture (weights, df, loc, scale; ``k`` each) in the scaled
  space, and the scaler's affine (loc, scale). Cached per (checkpoint, data fingerprint,
  target, max_context) in a bounded cache owned by the backend.
* Stage 2 (per trial): ``num_samples`` exact draws per window from its own generator seeded by
  :func:`objectives.evaluator.window_seed`, mapped to prices (``loc + scale * x``, as upstream's
  ``AffineTransformed``), then the aggregate. Vectorised over windows and samples.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import ClassVar

import numpy as np
import torch

from models.toto import Mixture, TotoModel, left_pad, sample_mixtures
from objectives.bars import Bars
from objectives.cache import DEFAULT_CACHE_BYTES, BoundedCache
from objectives.evaluator import BoundEvaluator, window_seed
from objectives.toto.space import TotoSettings, TotoSpace

logger = logging.getLogger(__name__)


class TotoBackend:
    """One loaded Toto model and its stage-1 cache."""

    name: ClassVar[str] = "toto"

    def __init__(
        self,
        model: TotoModel,
        checkpoint_id: str,
        device: str = "cpu",
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
        self.model = model
        self.checkpoint_id = checkpoint_id
        self.device = torch.device(device)
        self.space = TotoSpace()
        #: (fingerprint, target, max_context) -> (4k + 2,) float64 tensor
        self.stage1_cache: BoundedCache[torch.Tensor] = BoundedCache(cache_bytes)

    def evaluator(self, bars: Bars) -> TotoEvaluator:
        return TotoEvaluator(self, bars)

    def uncached(self) -> TotoBackend:
        """The same model with a zero-size stage-1 cache (live forecasting, for latency)."""
        return TotoBackend(self.model, self.checkpoint_id, str(self.device), cache_bytes=0)


class TotoEvaluator(BoundEvaluator[TotoSettings]):
    """Toto bound to one symbol's bars."""

    def __init__(self, backend: TotoBackend, bars: Bars) -> None:
        super().__init__(backend.space, backend.stage1_cache, bars)
        self.backend = backend
        param = next(backend.model.parameters())
        self.close = torch.as_tensor(bars.close, dtype=param.dtype)  # (N,) on the CPU

    def marginals(self, targets: list[int], max_context: int) -> torch.Tensor:
        """Step-1 marginals for ``targets``: ``(W, 4k + 2)`` float64 rows of mixture weights,
        df, loc, scale (``k`` each, scaled space), then the scaler's loc and scale."""
        rows = self.stage1(targets, max_context, lambda i: self._forward(i, max_context))
        return torch.stack(rows)

    def _forward(self, target: int, max_context: int) -> torch.Tensor:
        """One window's stage 1, computed alone: ``(4k + 2,)`` float64."""
        context = self.close[max(0, target - max_context) : target]
        patch = self.backend.model.config.patch_size
        series, mask = left_pad([context], patch, -(-len(context) // patch) * patch)
        out = self.backend.model(series.to(self.backend.device), mask.to(self.backend.device))
        step = out.step(0)  # each (1, 1, k)
        parts = [*(t[:, 0] for t in step), out.loc, out.scale]  # (1, k) x4, (1, 1) x2
        return torch.cat([p.to(torch.float64) for p in parts], dim=-1)[0]  # (4k + 2,)

    def samples(self, targets: np.ndarray, settings: TotoSettings, seed: int) -> torch.Tensor:
        """Stage 2: ``(W, num_samples)`` float64 price samples of each target's close."""
        rows_of = self.targets(targets)
        rows = self.marginals(rows_of, settings.max_context)  # (W, 4k + 2)
        k = self.backend.model.config.k_components
        mixture = Mixture(*rows[:, : 4 * k].unflatten(-1, (4, k)).unbind(1))  # (W, k) each
        device = rows.device
        generators = [
            torch.Generator(device=device).manual_seed(window_seed(seed, i)) for i in rows_of
        ]
        x = sample_mixtures(mixture, settings.num_samples, generators)  # (W, N) scaled space
        prices = rows[:, -2:-1] + rows[:, -1:] * x  # (W, N)
        # upstream replaces non-finite or huge samples by 0; keep the same rule
        limit = torch.finfo(self.close.dtype).max / 2
        return torch.where(prices.isfinite() & (prices.abs() < limit), prices, 0.0)

    def forecast_close(
        self, targets: np.ndarray, settings: TotoSettings | Mapping[str, object], seed: int
    ) -> np.ndarray:
        settings = self.settings(settings)
        prices = self.samples(targets, settings, seed)
        return settings.aggregate(prices).cpu().numpy().astype(np.float64)

    def forecast_quantiles(
        self,
        targets: np.ndarray,
        settings: TotoSettings | Mapping[str, object],
        seed: int,
        quantiles: list[float],
    ) -> np.ndarray:
        """Quantiles ``(len(targets), len(quantiles))`` of the price samples the forecast
        aggregates (the same draws)."""
        prices = self.samples(targets, self.settings(settings), seed)
        return np.quantile(prices.cpu().numpy(), quantiles, axis=-1).T
