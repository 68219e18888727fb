"""The seam a model backend plugs into, and seeds (the models: :mod:`objectives.registry`).

The two stages are described in docs/design-notes.md, "Two-stage evaluation".

A backend owns one loaded model. ``backend.evaluator(bars)`` binds it to one symbol's data and
returns an :class:`Evaluator` whose ``forecast_close`` runs both stages:

* stage 1, expensive: the model's forward passes, which depend only on the window and on the
  backend's ``STAGE1_PARAMS`` (e.g. Kronos ``max_context`` and ``clip``); computed window by
  window and cached in a :class:`objectives.cache.BoundedCache`, and, when the backend has
  one, in the folder of a :class:`objectives.disk_cache.DiskCache` shared by every process;
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

import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, ClassVar, Generic, Protocol, TypeVar

import numpy as np

from objectives.bars import Bars
from objectives.cache import BoundedCache
from objectives.disk_cache import Stage1Disk
from objectives.exceptions import DataError
from objectives.forecasts import Forecast
from objectives.metrics import Metrics, score
from objectives.registry import load_backend as load_backend  # where callers have long
from objectives.registry import load_space as load_space  # found the registry's loaders
from objectives.settings import Params, Settings
from objectives.tasks import LEVELS, Task

if TYPE_CHECKING:
    import optuna

S = TypeVar("S", bound=Settings)
S_co = TypeVar("S_co", bound=Settings, covariant=True)
S_contra = TypeVar("S_contra", bound=Settings, contravariant=True)
V = TypeVar("V")


class SearchSpace(Protocol[S_co]):
    """What Optuna searches for one model, and the model's settings type."""

    def suggest(self, trial: optuna.Trial) -> S_co:
        """Ask ``trial`` for values; return the settings they mean."""

    def from_params(self, params: Mapping[str, object]) -> S_co:
        """The settings of a finished trial's ``params``."""

    def from_config(self, config: Mapping[str, object]) -> S_co:
        """The settings of a config in the trading code's keys (checked; one-line errors)."""

    def known_good(self) -> list[Params]:
        """Optuna params enqueued as the first trials (the trading code's best)."""

    def trading_default(self) -> S_co:
        """The settings the trading code runs for a symbol without a record (its defaults)."""

    def describe(self) -> dict[str, object]:
        """A JSON-able description of the space, stored in the study's user attrs."""


class Evaluator(Protocol[S_contra]):
    """A backend bound to one symbol's bars, a task and a horizon; it takes its model's
    settings (``S_contra``: an evaluator of Kronos settings is no evaluator of any settings)."""

    task: Task
    horizon: int

    def forecast(self, origins: np.ndarray, settings: S_contra, seed: int) -> Forecast:
        """The task's columns along ``horizon``-step paths from each origin, with the draws;
        the path from origin ``o`` reads rows ``< o`` only."""

    def forecast_close(self, targets: np.ndarray, settings: S_contra, seed: int) -> np.ndarray:
        """One-step close forecasts, shape ``(len(targets),)``; target ``i`` reads rows ``< i``.

        ``targets`` may include ``len(bars)``: the next, unseen bar.
        """

    def forecast_quantiles(
        self, targets: np.ndarray, settings: S_contra, seed: int, quantiles: list[float]
    ) -> np.ndarray:
        """Quantiles of each target's sampled close, ``(len(targets), len(quantiles))``."""


class Backend(Protocol[S]):
    """One loaded model (weights shared by every symbol's evaluator), whose space suggests the
    settings ``S`` its evaluators take. A backend loaded by name is a ``Backend[Any]``: which
    settings type it has is known at run time only."""

    name: ClassVar[str]
    checkpoint_id: str

    @property
    def space(self) -> SearchSpace[S]:
        """The model's search space and settings type."""

    def evaluator(self, bars: Bars, task: Task = LEVELS, horizon: int = 1) -> Evaluator[S]: ...

    def uncached(self) -> Backend[S]:
        """The same weights with no stage-1 cache: what a live forecaster pays per forecast."""


class BoundEvaluator(Generic[S, V]):
    """What both backends' evaluators share: the bars, their fingerprint, the target check and
    the per-window stage-1 cache lookup (each window computed alone on a miss): memory first,
    then the disk cache ``stage1_disk`` when the backend has one. ``S``: the model's settings;
    ``V``: one window's stage-1 value."""

    def __init__(
        self,
        space: SearchSpace[S],
        stage1_cache: BoundedCache[V],
        bars: Bars,
        task: Task = LEVELS,
        horizon: int = 1,
        stage1_disk: Stage1Disk | None = None,
    ) -> None:
        self.space = space
        self.stage1_cache = stage1_cache
        self.stage1_disk = stage1_disk
        self.bars = bars
        self.fingerprint = bars.fingerprint()
        self.task = task
        self.horizon = int(horizon)
        if self.horizon < 1:
            raise DataError("--horizon must be at least 1")

    def settings(self, settings: S | Mapping[str, object]) -> S:
        """``settings`` as the model's type: a mapping in the trading code's keys (a script's
        call) is parsed and checked first."""
        return self.space.from_config(settings) if isinstance(settings, Mapping) else settings

    def targets(self, targets: np.ndarray) -> list[int]:
        """``targets`` as row numbers, each with at least one bar of context: ``1..len(bars)``
        (``len(bars)`` is the next, unseen bar)."""
        rows = [int(i) for i in np.asarray(targets).reshape(-1)]
        for i in rows:
            if not 1 <= i <= len(self.bars):
                raise DataError(f"target row {i} is outside 1..{len(self.bars)}")
        return rows

    def stage1(
        self,
        targets: list[int],
        key: Hashable,
        compute: Callable[[int], V],
        content: Callable[[int], Sequence[object]] | None = None,
    ) -> list[V]:
        """Each target's stage 1 under ``key`` (what besides the window it depends on), from
        the memory cache, else the disk cache, else ``compute(target)``; the list follows
        ``targets``. ``content(target)`` is what the disk cache keys the value by: everything
        it is a function of (the rows the window reads, the stage-1 settings), not positions,
        so a dataset with bars appended finds the windows it shares with the old one."""
        found: dict[int, V] = {}
        disk = self.stage1_disk if content is not None else None
        for i in dict.fromkeys(targets):
            cache_key = (self.fingerprint, i, key)
            value = self.stage1_cache.get(cache_key)
            if value is None:
                if disk is None or content is None:
                    value = compute(i)
                else:
                    value = disk.get_or_compute(content(i), partial(compute, i))
                value = self.stage1_cache.put(cache_key, value)
            found[i] = value
        return [found[i] for i in targets]


def window_seed(seed: int, target: int, stream: int = 0) -> int:
    """The seed of target row ``target``'s generator under seed set ``seed``; ``stream`` > 0
    gives further independent generators of the same target (Toto's other price columns)."""
    entropy = [seed, target] if stream == 0 else [seed, target, stream]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


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
    forecast: np.ndarray  # (len(targets),) float64: step-1 forecasts of the lead column
    seconds: float  # wall time of this call (warm caches make it far below live latency)
    paths: Forecast | None = None  # every column and step, with the draws


def evaluate(
    evaluator: Evaluator[S], bars: Bars, targets: np.ndarray, settings: S, seed: int
) -> Scored:
    """Forecast the paths from ``targets`` with ``settings`` under seed set ``seed`` and score
    them with every registered metric under the evaluator's task."""
    started = time.perf_counter()
    forecast = evaluator.forecast(targets, settings, seed)
    elapsed = time.perf_counter() - started
    metrics = score(bars, forecast, evaluator.task.path_score)
    return Scored(metrics, forecast.lead, elapsed, forecast)
