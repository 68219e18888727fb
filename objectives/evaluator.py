"""The seam a model backend plugs into (DESIGN §5), the backend registry, and seeds.

A backend owns one loaded model. ``backend.evaluator(bars)`` binds it to one symbol's data and
returns an :class:`Evaluator` whose ``forecast_close`` runs both stages:

* stage 1, expensive: the model's forward passes, which depend only on the window and on the
  backend's ``STAGE1_PARAMS`` (e.g. Kronos ``max_context`` and ``clip``); computed in batches
  across windows and cached in a :class:`objectives.cache.BoundedCache`;
* stage 2, per trial: sampling and aggregation, milliseconds once stage 1 is warm.

Every window's sampling uses its own generator seeded by :func:`window_seed`, so a forecast for
target ``i`` is the same whichever other targets are scored with it.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Mapping
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


class Backend(Protocol):
    """One loaded model (weights shared by every symbol's evaluator)."""

    name: ClassVar[str]
    checkpoint_id: str
    space: SearchSpace

    def evaluator(self, bars: Bars) -> Evaluator: ...


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


def trial_seed(study_seed: int, trial_number: int) -> int:
    """The sampling seed of one trial: a function of the study seed and trial number only."""
    return int(np.random.SeedSequence([study_seed, trial_number]).generate_state(1)[0])


def window_seed(seed: int, target: int) -> int:
    """The seed of one window's generator within a trial."""
    return int(np.random.SeedSequence([seed, target]).generate_state(1)[0])


def evaluate(
    evaluator: Evaluator,
    bars: Bars,
    targets: np.ndarray,
    config: Mapping[str, Any],
    seed: int,
) -> Metrics:
    """Forecast ``targets`` with ``config`` and score them; latency is per window."""
    started = time.perf_counter()
    forecast = evaluator.forecast_close(targets, config, seed)
    elapsed = time.perf_counter() - started
    return score(bars.close, targets, forecast, elapsed / max(len(targets), 1))
