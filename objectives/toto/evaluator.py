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
from typing import Any, ClassVar

import numpy as np
import torch

from models.toto import Mixture, TotoModel, left_pad, sample_mixtures
from objectives.bars import Bars
from objectives.cache import DEFAULT_CACHE_BYTES, BoundedCache
from objectives.evaluator import window_seed
from objectives.exceptions import DataError
from objectives.toto.aggregation import parse
from objectives.toto.space import TotoSpace

logger = logging.getLogger(__name__)

DEFAULT_MAX_CONTEXT = 4096


def check_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The trial config with types fixed; ``DataError`` names a bad value in one line."""
    missing = [k for k in ("num_samples", "aggregate") if k not in config]
    if missing:
        raise DataError(f"Toto config lacks {', '.join(map(repr, missing))}")
    out: dict[str, Any] = {"aggregate": parse(config["aggregate"])}
    for name, default in (("num_samples", None), ("max_context", DEFAULT_MAX_CONTEXT)):
        value = config.get(name, default)
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise DataError(f"Toto {name} must be a whole number, got {value!r}") from None
        if not number.is_integer() or number < 1:
            raise DataError(f"Toto {name} must be a whole number of at least 1, got {value!r}")
        out[name] = int(number)
    return out


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
        #: (checkpoint, fingerprint, target, max_context) -> (4k + 2,) float64 tensor
        self.stage1_cache: BoundedCache[torch.Tensor] = BoundedCache(cache_bytes)

    def evaluator(self, bars: Bars) -> TotoEvaluator:
        return TotoEvaluator(self, bars)

    def uncached(self) -> TotoBackend:
        """The same model with a zero-size stage-1 cache (live forecasting, for latency)."""
        return TotoBackend(self.model, self.checkpoint_id, str(self.device), cache_bytes=0)


class TotoEvaluator:
    """Toto bound to one symbol's bars."""

    def __init__(self, backend: TotoBackend, bars: Bars) -> None:
        self.backend = backend
        self.bars = bars
        self.fingerprint = bars.fingerprint()
        param = next(backend.model.parameters())
        self.close = torch.as_tensor(bars.close, dtype=param.dtype)  # (N,) on the CPU

    def _key(self, target: int, max_context: int) -> tuple[str, str, int, int]:
        return (self.backend.checkpoint_id, self.fingerprint, target, max_context)

    def stage1(self, targets: list[int], max_context: int) -> torch.Tensor:
        """Step-1 marginals for ``targets``: ``(W, 4k + 2)`` float64 rows of mixture weights,
        df, loc, scale (``k`` each, scaled space), then the scaler's loc and scale."""
        cache = self.backend.stage1_cache
        rows: dict[int, torch.Tensor] = {}
        for i in dict.fromkeys(targets):
            hit = cache.get(self._key(i, max_context))
            rows[i] = (
                hit
                if hit is not None
                else cache.put(self._key(i, max_context), self._forward(i, max_context))
            )
        return torch.stack([rows[i] for i in targets])

    def _forward(self, target: int, max_context: int) -> torch.Tensor:
        """One window's stage 1, computed alone: ``(4k + 2,)`` float64."""
        context = self.close[max(0, target - max_context) : target]
        patch = self.backend.model.config.patch_size
        series, mask = left_pad([context], patch, -(-len(context) // patch) * patch)
        out = self.backend.model(series.to(self.backend.device), mask.to(self.backend.device))
        step = out.step(0)  # each (1, 1, k)
        parts = [*(t[:, 0] for t in step), out.loc, out.scale]  # (1, k) x4, (1, 1) x2
        return torch.cat([p.to(torch.float64) for p in parts], dim=-1)[0]  # (4k + 2,)

    def samples(self, targets: np.ndarray, num_samples: int, seed: int, max_context: int):
        """Stage 2: ``(W, num_samples)`` float64 price samples of each target's close."""
        targets_list = [int(i) for i in np.asarray(targets).reshape(-1)]
        for i in targets_list:
            if not 1 <= i <= len(self.bars):
                raise DataError(f"target row {i} is outside 1..{len(self.bars)}")
        rows = self.stage1(targets_list, max_context)  # (W, 4k + 2)
        k = self.backend.model.config.k_components
        mixture = Mixture(*rows[:, : 4 * k].unflatten(-1, (4, k)).unbind(1))  # (W, k) each
        device = rows.device
        generators = [
            torch.Generator(device=device).manual_seed(window_seed(seed, i)) for i in targets_list
        ]
        x = sample_mixtures(mixture, num_samples, generators)  # (W, N) scaled space
        prices = rows[:, -2:-1] + rows[:, -1:] * x  # (W, N)
        # upstream replaces non-finite or huge samples by 0; keep the same rule
        limit = torch.finfo(self.close.dtype).max / 2
        return torch.where(prices.isfinite() & (prices.abs() < limit), prices, 0.0)

    def forecast_close(
        self, targets: np.ndarray, config: Mapping[str, Any], seed: int
    ) -> np.ndarray:
        cfg = check_config(config)
        prices = self.samples(targets, cfg["num_samples"], seed, cfg["max_context"])
        return cfg["aggregate"](prices).cpu().numpy().astype(np.float64)

    def forecast_quantiles(
        self, targets: np.ndarray, config: Mapping[str, Any], seed: int, quantiles: list[float]
    ) -> np.ndarray:
        """Quantiles ``(len(targets), len(quantiles))`` of the price samples the forecast
        aggregates (the same draws)."""
        cfg = check_config(config)
        prices = self.samples(targets, cfg["num_samples"], seed, cfg["max_context"])
        return np.quantile(prices.cpu().numpy(), quantiles, axis=-1).T
