"""The seam a model backend plugs into, the backend registry, and seeds.

The two stages are described in docs/design-notes.md, "Two-stage evaluation".

A backend owns one loaded model. ``backend.evaluator(bars)`` binds it to one symbol's data and
returns an :class:`Evaluator` whose ``forecast_close`` runs both stages:

* stage 1, expensive: the model's forward passes, which depend only on the window and on the
  backend's ``STAGE1_PARAMS`` (e.g. Kronos ``max_context`` and ``clip``); computed in batches
  across windows and cached in a :class:`objectives.cache.BoundedCache`;
* stage 2, per trial: sampling and aggregation, milliseconds once stage 1 is warm.

Seeds are common random numbers (docs/design-notes.md, "Seeds"): every trial of a study samples
target ``i`` from the generator seeded by ``window_seed(study_seed, i)``, so a configuration
always gets the same score and two configurations are compared on the same draws. A window's
forecast is a function of (data, checkpoint, configuration, seed) only: backends compute each
window alone, never in a batch whose shape depends on other windows or on the cache's history.
Confirmation re-scores the best few configurations with further seed sets
(:func:`confirmation_seed`), each again one integer usable with ``optimise forecast --seed``.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from objectives.bars import Bars
from objectives.metrics import Metrics, score

if TYPE_CHECKING:
    import optuna

BACKEND_MODULES = {"toto": "objectives.toto", "kronos": "objectives.kronos"}


class SearchSpace(Protocol):
    """What Optuna searches for one model, in the trading code's parameter names."""

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Ask ``trial`` for values; return the trading-code config (e.g. ``aggregate`` spec)."""

    def config_from_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Rebuild the trading-code config from a finished trial's ``params``."""

    def known_good(self) -> list[dict[str, Any]]:
        """Optuna ``params`` dicts enqueued as the first trials (the trading code's best)."""

    def describe(self) -> dict[str, Any]:
        """A JSON-able description of the space, stored in the study's user attrs."""


class Evaluator(Protocol):
    """A backend bound to one symbol's bars."""

    def forecast_close(
        self, targets: np.ndarray, config: Mapping[str, Any], seed: int
    ) -> np.ndarray:
        """One-step close forecasts, shape ``(len(targets),)``; target ``i`` reads rows ``< i``.

        ``targets`` may include ``len(bars)``: the next, unseen bar.
        """

    def forecast_quantiles(
        self, targets: np.ndarray, config: Mapping[str, Any], seed: int, quantiles: list[float]
    ) -> np.ndarray:
        """Quantiles of each target's sampled close, ``(len(targets), len(quantiles))``."""


class Backend(Protocol):
    """One loaded model (weights shared by every symbol's evaluator)."""

    name: ClassVar[str]
    checkpoint_id: str
    space: SearchSpace

    def evaluator(self, bars: Bars) -> Evaluator: ...

    def uncached(self) -> Backend:
        """The same weights with no stage-1 cache: what a live forecaster pays per forecast."""


def load_backend(
    name: str,
    *,
    checkpoint: str | None = None,
    tokenizer: str | None = None,
    device: str = "cpu",
) -> Backend:
    """Load the backend ``name`` (``toto`` or ``kronos``); ``None`` takes the published default."""
    if name not in BACKEND_MODULES:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(BACKEND_MODULES)}")
    module = importlib.import_module(BACKEND_MODULES[name])
    return module.load(checkpoint=checkpoint, tokenizer=tokenizer, device=device)


def window_seed(seed: int, target: int) -> int:
    """The seed of target row ``target``'s generator under seed set ``seed``."""
    return int(np.random.SeedSequence([seed, target]).generate_state(1)[0])


def confirmation_seed(study_seed: int, draw: int) -> int:
    """Seed set ``draw`` (1, 2, ...) for confirming a configuration on fresh Monte-Carlo draws;
    distinct from the search's seed set (the study seed itself) and from each other."""
    if draw < 1:
        raise ValueError("confirmation draws are numbered from 1")
    state = np.random.SeedSequence([study_seed, draw, 0xC0F1]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) >> 1) << 31 | int(state[1]) >> 1  # a 62-bit integer


@dataclass(frozen=True)
class Scored:
    """One scoring of a window set: metrics, the forecasts and what computing them cost."""

    metrics: Metrics
    forecast: np.ndarray  # (len(targets),) float64
    seconds: float  # wall time of this call (warm caches make it far below live latency)


def evaluate(
    evaluator: Evaluator,
    bars: Bars,
    targets: np.ndarray,
    config: Mapping[str, Any],
    seed: int,
) -> Scored:
    """Forecast ``targets`` with ``config`` under seed set ``seed`` and score them."""
    started = time.perf_counter()
    forecast = np.asarray(evaluator.forecast_close(targets, config, seed), dtype=np.float64)
    elapsed = time.perf_counter() - started
    return Scored(score(bars.close, targets, forecast), forecast, elapsed)
