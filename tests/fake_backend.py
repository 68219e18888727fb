"""A test double of a model backend: cheap, deterministic, honest about look-ahead.

Importing this module registers it as model ``fake``. Its "forecast" is the last close times
``1 + drift`` plus seeded noise; ``FAKE_TRIAL_SLEEP`` (seconds) slows each forecast so tests
can kill a worker mid-trial, ``FAKE_FAIL`` makes every forecast raise, and
``FAKE_PRICE_SHIFT`` (a price) is subtracted from every forecast, draw and quantile: a model
whose forecasts of a cheap series go below zero.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from objectives.bars import Bars
from objectives.evaluator import window_seed
from objectives.forecasts import Draws, Forecast
from objectives.registry import BackendSpec, Sources, register
from objectives.settings import check_keys
from objectives.tasks import LEVELS, Task

register("fake", __name__)


@dataclass(frozen=True)
class FakeSettings:
    drift: float
    noise: float

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> FakeSettings:
        check_keys("fake", config, ("drift", "noise"))
        return cls(float(config["drift"]), float(config["noise"]))

    def to_config(self) -> dict[str, float]:
        return {"drift": self.drift, "noise": self.noise}

    def to_params(self) -> dict[str, float]:
        return self.to_config()


class FakeSpace:
    def suggest(self, trial: Any) -> FakeSettings:
        return FakeSettings(
            trial.suggest_float("drift", -0.02, 0.02), trial.suggest_float("noise", 0.0, 0.05)
        )

    def from_params(self, params: Mapping[str, Any]) -> FakeSettings:
        return FakeSettings(float(params["drift"]), float(params["noise"]))

    def from_config(self, config: Mapping[str, Any]) -> FakeSettings:
        return FakeSettings.from_config(config)

    def known_good(self) -> list[dict[str, Any]]:
        return [{"drift": 0.0, "noise": 0.0}]

    def trading_default(self) -> FakeSettings:
        """The comparator of ``vs_default``: not naive, so the two comparisons differ."""
        return FakeSettings(0.001, 0.01)

    def describe(self) -> dict[str, Any]:
        return {"drift": [-0.02, 0.02], "noise": [0.0, 0.05]}


SPACE = FakeSpace()


class FakeEvaluator:
    def __init__(self, bars: Bars, task: Task = LEVELS, horizon: int = 1) -> None:
        self.bars = bars
        self.task = task
        self.horizon = horizon
        self.calls = 0

    def _start_call(self) -> None:
        """Count the call; ``FAKE_FAIL`` raises, ``FAKE_TRIAL_SLEEP`` slows it."""
        self.calls += 1
        if os.environ.get("FAKE_FAIL"):
            raise RuntimeError("simulated out of memory")
        delay = float(os.environ.get("FAKE_TRIAL_SLEEP", "0"))
        if delay:
            time.sleep(delay)

    def forecast(self, origins: np.ndarray, settings: FakeSettings, seed: int) -> Forecast:
        """Every column: its last value times ``(1 + drift) ** step`` plus one seeded noise
        draw per (column, step); the draws: 16 more of the same noise."""
        self._start_call()
        origins = np.asarray(origins, dtype=np.int64)
        columns = self.task.column_indices
        H = self.horizon
        points, draws = [], []
        for origin in origins:
            last = self.bars.prices[origin - 1, columns]  # rows < origin only
            rng = np.random.default_rng(window_seed(seed, int(origin)))
            growth = (1 + settings.drift) ** np.arange(1, H + 1)
            centre = last[:, None] * growth[None, :]  # (C, H)
            scale = settings.noise * last[None, :, None]
            noise = rng.standard_normal((17, len(columns), H)) * scale
            shift = _shift()
            points.append(centre + noise[0] - shift)
            draws.append(Draws(centre[None] + noise[1:] - shift, np.ones(16)))
        return Forecast(origins, self.task.columns, np.asarray(points), tuple(draws))

    def forecast_close(self, targets: np.ndarray, settings: FakeSettings, seed: int):
        self._start_call()
        out = []
        for target in np.asarray(targets):
            context = self.bars.close[:target]  # rows < target only
            rng = np.random.default_rng(window_seed(seed, int(target)))
            noise = rng.standard_normal() * settings.noise * context[-1]
            out.append(context[-1] * (1 + settings.drift) + noise - _shift())
        return np.asarray(out)

    def forecast_quantiles(self, targets, settings: FakeSettings, seed, quantiles):
        from statistics import NormalDist

        centre = np.array([self.bars.close[t - 1] * (1 + settings.drift) for t in targets])
        spread = np.array([self.bars.close[t - 1] * settings.noise for t in targets])
        z = np.array([NormalDist().inv_cdf(q) for q in quantiles])
        return centre[:, None] + spread[:, None] * z[None, :] - _shift()


def _shift() -> float:
    return float(os.environ.get("FAKE_PRICE_SHIFT", "0"))


class FakeBackend:
    name: ClassVar[str] = "fake"

    def __init__(self, checkpoint: str | None) -> None:
        self.checkpoint_id = checkpoint or "fake-model"
        self.space = FakeSpace()

    def evaluator(self, bars: Bars, task: Task = LEVELS, horizon: int = 1) -> FakeEvaluator:
        return FakeEvaluator(bars, task, horizon)

    def uncached(self) -> FakeBackend:
        return self


def load(sources: Sources, device: str, disk_cache: object) -> FakeBackend:
    return FakeBackend(sources.get("checkpoint"))  # no stage 1 to keep on disk


SPEC = BackendSpec(
    name="fake", title="Fake", default_checkpoint="fake-model", load=load, space=lambda: SPACE
)


if __name__ == "__main__":  # run the CLI with this backend registered
    import sys

    from optimise.cli import main

    sys.exit(main())
