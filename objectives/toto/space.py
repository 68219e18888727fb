"""The Toto search space: how many samples to draw, and how to reduce them.

Optuna params:

* ``num_samples``: categorical {128, 256, 512, 1024, 2048, 3072, 4096}: the values the trading
  code runs as written (64 is not searched: the trading code clamps it to 128);
* ``aggregate_family``: categorical over the families of :mod:`objectives.toto.aggregation`,
  which mean what the trading code's ``aggregate_with_spec`` reads;
* the active family's arguments only, each on a step grid so that spec strings round-trip and
  the trading code's values are exactly representable: ``<family>_<arg>``, e.g.
  ``trimmed_mean_fraction`` (0.01..0.45 step 0.01), ``lower_trimmed_mean_fraction`` (0.01..0.90;
  it drops the *top* fraction) or ``mean_quantile_mix_w`` (the weight of the mean).

``quantile_plus_std_Q_S`` is not searched: the trading code reads any spec starting
``quantile_`` as a plain quantile, so it means ``quantile_S`` there, which ``quantile``
already covers. :meth:`TotoSettings.to_params` maps it (and percent forms such as
``trimmed_mean_10``, and ``p10``/``p90``) to the params of the same function.

The trial's config is the trading code's: ``{"num_samples": 3072, "samples_per_batch": 512,
"aggregate": "trimmed_mean_0.10"}``, the aggregate always in canonical form.

What the trading code runs is what was scored. Its ``resolve_toto_params`` /
``_clamp_toto_params`` / ``_normalise_sampling_params`` (default environment) clamp
``num_samples`` to [128, 4096] and ``samples_per_batch`` (default 384 when a record has none) to
[32, min(512, num_samples)], then round ``num_samples`` down to a multiple of
``samples_per_batch``: without the key, 512 would run as 384, 1024 as 768, 2048 as 1920, 4096 as
3840, and 64 as 128. So the config always carries ``samples_per_batch`` =
:func:`batch_for` (``num_samples``), the largest batch the trading code keeps that divides
``num_samples``: 128 -> 128, 256 -> 256, 512..4096 -> 512; each searched value then runs
unchanged (``tests/objectives/test_trading_resolution.py``). The batch is a memory setting, not
a searched one: with one-step forecasts the samples are independent draws whatever the batch.
:meth:`TotoSettings.from_config` accepts a ``samples_per_batch`` only if the trading code runs
it and ``num_samples`` as written. Its environment overrides (``MARKETSIM_TOTO_MIN_NUM_SAMPLES``
and the other ``MARKETSIM_TOTO_*`` bounds, ``FAST_TESTING``) are the trading operator's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from objectives.exceptions import DataError
from objectives.settings import Config, ModelSpace, Params, check_keys, number, param
from objectives.toto.aggregation import FAMILIES, Aggregate, format_spec, parse

if TYPE_CHECKING:
    import optuna

DEFAULT_MAX_CONTEXT = 4096  # the context cap when a config does not set one

NUM_SAMPLES = (128, 256, 512, 1024, 2048, 3072, 4096)

#: the trading code's sampling bounds (``_clamp_toto_params``, default environment)
TRADING_NUM_SAMPLES = (128, 4096)
TRADING_SAMPLES_PER_BATCH = (32, 512)

#: the searched families (every family the trading code's parser can mean)
SEARCHED = tuple(FAMILIES)

#: param name -> (low, high, step) of its grid
GRIDS: dict[str, tuple[float, float, float]] = {
    "trimmed_mean_fraction": (0.01, 0.45, 0.01),
    "lower_trimmed_mean_fraction": (0.01, 0.90, 0.01),
    "upper_trimmed_mean_fraction": (0.01, 0.90, 0.01),
    "quantile_q": (0.05, 0.95, 0.01),
    "mean_minus_std_s": (0.05, 1.50, 0.05),
    "mean_plus_std_s": (0.05, 1.50, 0.05),
    "mean_quantile_mix_q": (0.05, 0.95, 0.01),
    "mean_quantile_mix_w": (0.05, 0.95, 0.05),
}

#: what the aggregate specs mean; part of :meth:`TotoSpace.describe`, so a study searched under
#: the earlier meaning (lower/upper trimmed means and the mix weight reversed) is not resumed
AGGREGATE_SEMANTICS = (
    "trading-code aggregate_with_spec v2: lower_trimmed_mean_F keeps the lowest "
    "max(1,int(N(1-F))) sorted samples; upper_trimmed_mean_F keeps sorted[min(N-1,int(NF)):]; "
    "mean_quantile_mix_Q_W = W*mean+(1-W)*quantile_Q; percent tokens; p10/p90; "
    "quantile_plus_std_Q_S reads as quantile_S"
)

#: the trading code's best known setting
TRADING_BEST: Config = {"num_samples": 3072, "aggregate": "trimmed_mean_0.10"}

#: what the trading code runs without a record (``resolve_toto_params``' defaults, as it writes
#: them; ../shared/CONSUMER.md): the comparator of ``vs_default``. It runs 3072 samples as
#: written (3072 is a multiple of 384); the batch is a memory setting, not scored
TRADING_DEFAULTS: Config = {
    "num_samples": 3072,
    "samples_per_batch": 384,
    "aggregate": "trimmed_mean_10",
}


def batch_for(num_samples: int) -> int | None:
    """The ``samples_per_batch`` written for ``num_samples``: the largest batch the trading
    code keeps (32..min(512, num_samples)) that divides ``num_samples``; ``None`` when the
    trading code cannot run ``num_samples`` as written (outside 128..4096, or no such batch)."""
    if not TRADING_NUM_SAMPLES[0] <= num_samples <= TRADING_NUM_SAMPLES[1]:
        return None
    low, high = TRADING_SAMPLES_PER_BATCH[0], min(TRADING_SAMPLES_PER_BATCH[1], num_samples)
    return next((b for b in range(high, low - 1, -1) if num_samples % b == 0), None)


def _check_batch(num_samples: int, samples_per_batch: int) -> None:
    """``DataError`` unless the trading code runs both values as written."""
    low, high = TRADING_SAMPLES_PER_BATCH
    if (
        TRADING_NUM_SAMPLES[0] <= num_samples <= TRADING_NUM_SAMPLES[1]
        and low <= samples_per_batch <= min(high, num_samples)
        and num_samples % samples_per_batch == 0
    ):
        return
    best = batch_for(num_samples)
    fix = (
        f"use samples_per_batch={best} or leave it out"
        if best is not None
        else f"num_samples must be in {TRADING_NUM_SAMPLES[0]}..{TRADING_NUM_SAMPLES[1]}"
    )
    raise DataError(
        f"Toto num_samples={num_samples} with samples_per_batch={samples_per_batch} is not what "
        f"the trading code runs (it needs num_samples in {TRADING_NUM_SAMPLES[0]}.."
        f"{TRADING_NUM_SAMPLES[1]}, samples_per_batch in {low}..min({high}, num_samples), and "
        f"num_samples a multiple of samples_per_batch); {fix}"
    )


def param_name(family: str, arg: str) -> str:
    return f"{family}_{arg}"


def _grid_value(name: str, value: float, *, exact: bool) -> float:
    """The grid value ``value`` stands for (the float of its two-decimal text). ``exact``: it
    must be that float already (a config's value, which is the function evaluated); otherwise
    within 1e-9 (an Optuna param, e.g. ``0.01 + 9 * 0.01``)."""
    low, high, step = GRIDS[name]
    k = round((value - low) / step)
    snapped = float(f"{low + k * step:.2f}")
    off = snapped != value if exact else abs(snapped - value) > 1e-9
    if off or not low <= snapped <= high:
        raise DataError(
            f"{name}={value!r} is not on the search grid {low:.2f}..{high:.2f} step {step:.2f}"
        )
    return snapped


@dataclass(frozen=True)
class TotoSettings:
    """One Toto setting: how many samples, how they are reduced (the parsed ``aggregate``
    spec, meaning what the trading code's parser reads), and the context cap."""

    num_samples: int
    aggregate: Aggregate
    max_context: int = DEFAULT_MAX_CONTEXT

    def __post_init__(self) -> None:
        for name in ("num_samples", "max_context"):
            if getattr(self, name) < 1:
                raise DataError(
                    f"Toto {name} must be a whole number of at least 1, got {getattr(self, name)}"
                )

    @classmethod
    def from_config(cls, config: Mapping[str, object]) -> TotoSettings:
        """From the trading code's keys ``num_samples``, ``aggregate`` (any spec its parser
        reads) and, optionally, ``samples_per_batch`` (checked: the trading code must run it
        and ``num_samples`` as written; it is not kept, :meth:`to_config` writes
        :func:`batch_for`) and ``max_context``."""
        check_keys(
            "Toto", config, ("num_samples", "aggregate"), ("samples_per_batch", "max_context")
        )
        spec = config["aggregate"]
        num_samples = _whole("num_samples", config["num_samples"])
        if "samples_per_batch" in config:
            _check_batch(num_samples, _whole("samples_per_batch", config["samples_per_batch"]))
        return cls(
            num_samples=num_samples,
            aggregate=parse(spec),  # a non-string is a one-line DataError there
            max_context=_whole("max_context", config.get("max_context", DEFAULT_MAX_CONTEXT)),
        )

    @classmethod
    def from_params(cls, params: Mapping[str, object]) -> TotoSettings:
        """From Optuna params: ``num_samples``, ``aggregate_family`` and its grid arguments."""
        family = param("Toto", params, "aggregate_family")
        if family not in SEARCHED:
            raise DataError(
                f"unknown aggregate family {family!r}; expected one of {', '.join(SEARCHED)}"
            )
        args = tuple(
            _grid_value(name, number("Toto", name, param("Toto", params, name), float),
                        exact=False)
            for name in (param_name(family, a) for a in FAMILIES[family])
        )  # fmt: skip
        num_samples = _whole("num_samples", param("Toto", params, "num_samples"))
        return cls(num_samples, parse(format_spec(family, args)))  # validated, canonical

    def to_config(self) -> Config:
        """``{"num_samples": N, "samples_per_batch": batch_for(N), "aggregate": <canonical
        spec>}`` (``samples_per_batch`` left out when the trading code cannot run ``N`` as
        written, which no searched value is; ``max_context`` when it is not the default)."""
        config: Config = {"num_samples": self.num_samples}
        batch = batch_for(self.num_samples)
        if batch is not None:
            config["samples_per_batch"] = batch
        config["aggregate"] = self.aggregate.spec
        if self.max_context != DEFAULT_MAX_CONTEXT:
            config["max_context"] = self.max_context
        return config

    def to_params(self) -> Params:
        """The Optuna params of the canonical setting the trading code reads the spec as, e.g.
        ``p10`` -> ``quantile`` 0.10; ``DataError`` if that setting is outside the space."""
        if self.num_samples not in NUM_SAMPLES:
            raise DataError(
                f"num_samples {self.num_samples} is not one of {NUM_SAMPLES} (the values the "
                f"trading code runs as written; it clamps num_samples to "
                f"{TRADING_NUM_SAMPLES[0]}..{TRADING_NUM_SAMPLES[1]})"
            )
        family = self.aggregate.family
        if family not in SEARCHED:
            raise DataError(f"aggregate {self.aggregate.spec!r} is not in the search space")
        params: Params = {"num_samples": self.num_samples, "aggregate_family": family}
        for arg, value in zip(FAMILIES[family], self.aggregate.args, strict=True):
            name = param_name(family, arg)
            try:
                params[name] = _grid_value(name, value, exact=True)
            except DataError as exc:
                raise DataError(f"aggregate {self.aggregate.spec!r}: {exc}") from None
        return params


def _whole(name: str, value: object) -> int:
    try:
        return number("Toto", name, value, int)
    except DataError:
        raise DataError(
            f"Toto {name} must be a whole number of at least 1, got {value!r}"
        ) from None


class TotoSpace(ModelSpace[TotoSettings]):
    """Searches ``num_samples`` and the ``aggregate`` spec (family + its arguments)."""

    settings = TotoSettings
    trading_best = TRADING_BEST
    trading_defaults = TRADING_DEFAULTS

    def suggest(self, trial: optuna.Trial) -> TotoSettings:
        params: Params = {
            "num_samples": trial.suggest_categorical("num_samples", list(NUM_SAMPLES)),
            "aggregate_family": trial.suggest_categorical("aggregate_family", list(SEARCHED)),
        }
        for arg in FAMILIES[str(params["aggregate_family"])]:
            name = param_name(str(params["aggregate_family"]), arg)
            low, high, step = GRIDS[name]
            params[name] = trial.suggest_float(name, low, high, step=step)
        return TotoSettings.from_params(params)

    def describe(self) -> dict[str, object]:
        params: dict[str, object] = {
            "num_samples": {"type": "categorical", "choices": list(NUM_SAMPLES)},
            "aggregate_family": {"type": "categorical", "choices": list(SEARCHED)},
        }
        for family in SEARCHED:
            for arg in FAMILIES[family]:
                name = param_name(family, arg)
                low, high, step = GRIDS[name]
                params[name] = {
                    "type": "float",
                    "low": low,
                    "high": high,
                    "step": step,
                    "when": f"aggregate_family={family}",
                }
        return {
            "model": "toto",
            "params": params,
            "config": "num_samples, samples_per_batch (the largest of 32..min(512, "
            "num_samples) dividing it), aggregate (spec string, e.g. trimmed_mean_0.10)",
            "aggregate_semantics": AGGREGATE_SEMANTICS,
            "known_good_from": TRADING_BEST,
        }
