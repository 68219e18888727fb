"""Live latency: what the trading code pays to forecast a window with one configuration.

The trading code times its own loop: for each target of a window it runs the model live (every
forward pass, no cache shared between forecasts) and sums the wall time. A trial's own cost is
far lower (stage 1 is cached across trials), so it is never exported as ``latency_s``. Timing
every target of every exported window would cost as much as the forecasts themselves on a slow
model, so a few targets are timed, each on an empty cache after one untimed warm-up forecast,
and the mean is scaled to the window's length; :class:`Latency` says so.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from objectives.bars import Bars
from objectives.evaluator import Backend
from objectives.settings import JSONValue, Settings
from objectives.tasks import LEVELS, Task

DEFAULT_TIMED = 3


@dataclass(frozen=True)
class Latency:
    """Seconds of live forecasting over a window of ``window`` targets."""

    latency_s: float  # per_forecast_s * window
    per_forecast_s: float
    timed_forecasts: int
    window: int
    threads: int
    method: str = "mean wall time of live forecasts on an empty cache, scaled to the window"

    def as_dict(self) -> dict[str, JSONValue]:
        return asdict(self)


def live_latency(
    backend: Backend,
    bars: Bars,
    targets: np.ndarray,
    settings: Settings,
    seed: int,
    task: Task = LEVELS,
    horizon: int = 1,
    timed: int = DEFAULT_TIMED,
) -> Latency:
    """Time ``timed`` evenly spaced targets of ``targets`` forecast live, scale to the window."""
    targets = np.asarray(targets, dtype=np.int64)
    chosen = targets[
        np.unique(np.linspace(0, len(targets) - 1, min(timed, len(targets))).round().astype(int))
    ]
    backend.uncached().evaluator(bars, task, horizon).forecast(targets[-1:], settings, seed)
    seconds = []
    for target in chosen:
        live = backend.uncached().evaluator(bars, task, horizon)  # every forward pass runs
        started = time.perf_counter()
        live.forecast(np.array([target]), settings, seed)
        seconds.append(time.perf_counter() - started)
    per_forecast = float(np.mean(seconds))
    return Latency(
        latency_s=per_forecast * len(targets),
        per_forecast_s=per_forecast,
        timed_forecasts=len(chosen),
        window=len(targets),
        threads=torch.get_num_threads(),
    )
