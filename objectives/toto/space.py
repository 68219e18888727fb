"""The Toto search space: how many samples to draw, and how to reduce them.

Optuna params:

* ``num_samples``: categorical {64, 128, 256, 512, 1024, 2048, 3072, 4096};
* ``aggregate_family``: categorical over the families of :mod:`objectives.toto.aggregation`,
  which mean what the trading code's ``aggregate_with_spec`` reads;
* the active family's arguments only, each on a step grid so that spec strings round-trip and
  the trading code's values are exactly representable: ``<family>_<arg>``, e.g.
  ``trimmed_mean_fraction`` (0.01..0.45 step 0.01), ``lower_trimmed_mean_fraction`` (0.01..0.90;
  it drops the *top* fraction) or ``mean_quantile_mix_w`` (the weight of the mean).

``quantile_plus_std_Q_S`` is not searched: the trading code reads any spec starting
``quantile_`` as a plain quantile, so it means ``quantile_S`` there, which ``quantile``
already covers. :meth:`TotoSpace.params_from_config` maps it (and percent forms such as
``trimmed_mean_10``, and ``p10``/``p90``) to the params of the same function.

The trial's config is the trading code's: ``{"num_samples": 3072, "aggregate":
"trimmed_mean_0.10"}``, the aggregate always in canonical form.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from objectives.exceptions import DataError
from objectives.toto.aggregation import FAMILIES, format_spec, parse

if TYPE_CHECKING:
    import optuna

NUM_SAMPLES = (64, 128, 256, 512, 1024, 2048, 3072, 4096)

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
TRADING_BEST = {"num_samples": 3072, "aggregate": "trimmed_mean_0.10"}


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


class TotoSpace:
    """Searches ``num_samples`` and the ``aggregate`` spec (family + its arguments)."""

    #: config keys a user may add that are not searched (the context cap, default 4096)
    optional_config = ("max_context",)

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        params: dict[str, Any] = {
            "num_samples": trial.suggest_categorical("num_samples", list(NUM_SAMPLES)),
            "aggregate_family": trial.suggest_categorical("aggregate_family", list(SEARCHED)),
        }
        for arg in FAMILIES[params["aggregate_family"]]:
            name = param_name(params["aggregate_family"], arg)
            low, high, step = GRIDS[name]
            params[name] = trial.suggest_float(name, low, high, step=step)
        return self.config_from_params(params)

    def config_from_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``{"num_samples": N, "aggregate": <canonical spec>}`` of the trial params."""
        try:
            family = params["aggregate_family"]
            if family not in SEARCHED:
                raise DataError(
                    f"unknown aggregate family {family!r}; expected one of {', '.join(SEARCHED)}"
                )
            args = tuple(
                _grid_value(name, float(params[name]), exact=False)
                for name in (param_name(family, a) for a in FAMILIES[family])
            )
            num_samples = int(params["num_samples"])
        except KeyError as exc:
            raise DataError(f"Toto trial params lack {exc.args[0]!r}") from None
        spec = parse(format_spec(family, args)).spec  # validates; canonical
        return {"num_samples": num_samples, "aggregate": spec}

    def params_from_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The Optuna params of a trading-code config (inverse of :meth:`config_from_params`):
        the params of the canonical setting the trading code reads the spec as, e.g. ``p10`` ->
        ``quantile`` 0.10, ``trimmed_mean_10`` -> ``trimmed_mean`` 0.10."""
        parsed = parse(config["aggregate"])
        params: dict[str, Any] = {
            "num_samples": int(config["num_samples"]),
            "aggregate_family": parsed.family,
        }
        if params["num_samples"] not in NUM_SAMPLES:
            raise DataError(f"num_samples {params['num_samples']} is not one of {NUM_SAMPLES}")
        if parsed.family not in SEARCHED:
            raise DataError(f"aggregate {config['aggregate']!r} is not in the search space")
        for arg, value in zip(FAMILIES[parsed.family], parsed.args, strict=True):
            name = param_name(parsed.family, arg)
            try:
                params[name] = _grid_value(name, value, exact=True)
            except DataError as exc:
                raise DataError(
                    f"aggregate {config['aggregate']!r} (canonical {parsed.spec!r}): {exc}"
                ) from None
        return params

    def known_good(self) -> list[dict[str, Any]]:
        """The trading code's best: ``trimmed_mean_0.10`` over 3072 samples."""
        return [self.params_from_config(TRADING_BEST)]

    def describe(self) -> dict[str, Any]:
        params: dict[str, Any] = {
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
            "config": "num_samples, aggregate (spec string, e.g. trimmed_mean_0.10)",
            "aggregate_semantics": AGGREGATE_SEMANTICS,
            "known_good_from": TRADING_BEST,
        }
