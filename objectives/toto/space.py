"""The Toto search space: how many samples to draw, and how to reduce them.

Optuna params:

* ``num_samples``: categorical {64, 128, 256, 512, 1024, 2048, 3072, 4096};
* ``aggregate_family``: categorical over the families of :mod:`objectives.toto.aggregation`;
* the active family's arguments only, each on a step grid so that spec strings round-trip and
  the trading code's values are exactly representable: ``<family>_<arg>``, e.g.
  ``trimmed_mean_fraction`` (0.01..0.45 step 0.01) or ``quantile_plus_std_s``.

The trial's config is the trading code's: ``{"num_samples": 3072, "aggregate":
"trimmed_mean_0.10"}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from objectives.exceptions import DataError
from objectives.toto.aggregation import FAMILIES, format_spec, parse

if TYPE_CHECKING:
    import optuna

NUM_SAMPLES = (64, 128, 256, 512, 1024, 2048, 3072, 4096)

#: argument name -> (low, high, step) of its grid
GRIDS: dict[str, tuple[float, float, float]] = {
    "fraction": (0.01, 0.45, 0.01),
    "q": (0.05, 0.95, 0.01),
    "s": (0.05, 1.50, 0.05),
    "w": (0.05, 0.95, 0.05),
}

#: the trading code's best known setting
TRADING_BEST = {"num_samples": 3072, "aggregate": "trimmed_mean_0.10"}


def param_name(family: str, arg: str) -> str:
    return f"{family}_{arg}"


def _on_grid(value: float, arg: str) -> float:
    low, high, step = GRIDS[arg]
    k = round((value - low) / step)
    snapped = round(low + k * step, 10)
    if abs(snapped - value) > 1e-9 or not low - 1e-9 <= value <= high + 1e-9:
        raise DataError(f"{arg}={value} is not on the search grid {low}..{high} step {step}")
    return snapped


class TotoSpace:
    """Searches ``num_samples`` and the ``aggregate`` spec (family + its arguments)."""

    #: config keys a user may add that are not searched (the context cap, default 4096)
    optional_config = ("max_context",)

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        params: dict[str, Any] = {
            "num_samples": trial.suggest_categorical("num_samples", list(NUM_SAMPLES)),
            "aggregate_family": trial.suggest_categorical("aggregate_family", list(FAMILIES)),
        }
        for arg in FAMILIES[params["aggregate_family"]]:
            name = param_name(params["aggregate_family"], arg)
            low, high, step = GRIDS[arg]
            params[name] = trial.suggest_float(name, low, high, step=step)
        return self.config_from_params(params)

    def config_from_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        try:
            family = params["aggregate_family"]
            if family not in FAMILIES:
                raise DataError(f"unknown aggregate family {family!r}")
            args = tuple(float(params[param_name(family, a)]) for a in FAMILIES[family])
            num_samples = int(params["num_samples"])
        except KeyError as exc:
            raise DataError(f"Toto trial params lack {exc.args[0]!r}") from None
        spec = format_spec(family, args)
        parse(spec)  # validate
        return {"num_samples": num_samples, "aggregate": spec}

    def params_from_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The Optuna params of a trading-code config (inverse of :meth:`config_from_params`)."""
        parsed = parse(config["aggregate"])
        params: dict[str, Any] = {
            "num_samples": int(config["num_samples"]),
            "aggregate_family": parsed.family,
        }
        if params["num_samples"] not in NUM_SAMPLES:
            raise DataError(f"num_samples {params['num_samples']} is not one of {NUM_SAMPLES}")
        for arg, value in zip(FAMILIES[parsed.family], parsed.args, strict=True):
            params[param_name(parsed.family, arg)] = _on_grid(value, arg)
        return params

    def known_good(self) -> list[dict[str, Any]]:
        """The trading code's best: ``trimmed_mean_0.10`` over 3072 samples."""
        return [self.params_from_config(TRADING_BEST)]

    def describe(self) -> dict[str, Any]:
        params: dict[str, Any] = {
            "num_samples": {"type": "categorical", "choices": list(NUM_SAMPLES)},
            "aggregate_family": {"type": "categorical", "choices": list(FAMILIES)},
        }
        for family, args in FAMILIES.items():
            for arg in args:
                low, high, step = GRIDS[arg]
                params[param_name(family, arg)] = {
                    "type": "float",
                    "low": low,
                    "high": high,
                    "step": step,
                    "when": f"aggregate_family={family}",
                }
        return {
            "model": "toto",
            "params": params,
            "config": "num_samples, aggregate (spec string, e.g. trimmed_mean_0.10)",
            "known_good_from": TRADING_BEST,
        }
