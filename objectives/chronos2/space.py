"""The Chronos-2 search space: what changes its forecasts.

Chronos-2 is deterministic: one forward pass gives fixed quantiles of each future step, so
the only choices are what it reads and how a point is taken from what it returns.

Optuna params:

* ``context_length``: categorical {128, 256, 512, 1024, 2048} rows before the target (fewer
  when the history is shorter, as the trading code trims it);
* ``use_multivariate``: categorical {False, True}: each price column forecast alone, or the
  task's columns as one multivariate series (the package's group attention), as the trading
  code's ``use_multivariate`` key;
* ``aggregation``: categorical {median, mean, quantile}: the 0.5 quantile (what the trading
  code takes), the mean over the model's quantile levels, or one level;
* ``quantile_level`` (only with ``quantile``): 0.10..0.90 step 0.05 (levels the model predicts,
  so no interpolation).

The config is in the trading code's keys: ``{"context_length": 512, "quantile_levels": [0.1,
0.5, 0.9], "aggregation": "median", "use_multivariate": false}``. ``prediction_length`` is not
written (the record's ``windows.forecast_horizon`` is the study's horizon, 7 steps under the
trading task as the trading code's backtest runs it; any length up to the 16-step output patch
gives the same quantiles of each step: one patch is predicted); a config that has one is
accepted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from objectives.exceptions import DataError
from objectives.settings import Config, ModelSpace, Params, check_keys, number, param

if TYPE_CHECKING:
    import optuna

CONTEXT_LENGTHS = (128, 256, 512, 1024, 2048)
AGGREGATIONS = ("median", "mean", "quantile")
QUANTILE_GRID = (0.10, 0.90, 0.05)
#: the quantile levels the trading code asks for (its ``DEFAULT_QUANTILE_LEVELS``)
TRADING_LEVELS = (0.1, 0.5, 0.9)

TRADING_BEST: Config = {"context_length": 512, "aggregation": "median", "use_multivariate": True}
#: ``resolve_chronos2_params``' defaults (context 512, median of [0.1, 0.5, 0.9]); its wrapper
#: gives ``predict_df`` every OHLC column as a target of one series: a joint forecast
TRADING_DEFAULTS: Config = TRADING_BEST


def _level(value: object, *, exact: bool) -> float:
    """A quantile level on the grid (a config's value must be its two-decimal float)."""
    low, high, step = QUANTILE_GRID
    level = number("Chronos-2", "quantile_level", value, float)
    k = round((level - low) / step)
    snapped = float(f"{low + k * step:.2f}")
    off = snapped != level if exact else abs(snapped - level) > 1e-9
    if off or not low <= snapped <= high:
        raise DataError(
            f"Chronos-2 quantile level {value!r} is not on the grid {low:.2f}..{high:.2f} "
            f"step {step:.2f}"
        )
    return snapped


@dataclass(frozen=True)
class Chronos2Settings:
    """One Chronos-2 setting: context rows, how columns enter, how a point is taken."""

    context_length: int = 512
    aggregation: str = "median"  # median, mean (over the levels) or quantile
    quantile_level: float = 0.5  # read only with aggregation "quantile"
    use_multivariate: bool = False

    def __post_init__(self) -> None:
        if self.context_length < 1:
            raise DataError(
                f"Chronos-2 context_length must be at least 1, got {self.context_length}"
            )
        if self.aggregation not in AGGREGATIONS:
            raise DataError(
                f"Chronos-2 aggregation {self.aggregation!r} is not one of "
                f"{', '.join(AGGREGATIONS)} (or quantile_<level>)"
            )

    @property
    def point_level(self) -> float | None:
        """The quantile level the point is, ``None`` for the mean over levels."""
        return {"median": 0.5, "mean": None}.get(self.aggregation, self.quantile_level)

    @classmethod
    def from_config(cls, config: Mapping[str, object]) -> Chronos2Settings:
        """From the trading code's keys; ``aggregation`` ``median``, ``mean`` or
        ``quantile_<level>``; ``quantile_levels`` and ``prediction_length`` are checked."""
        check_keys("Chronos-2", config, ("context_length",), (
            "aggregation", "use_multivariate", "quantile_levels", "prediction_length", "name",
        ))  # fmt: skip
        text = str(config.get("aggregation", "median"))
        aggregation, level = text, 0.5
        if text.startswith("quantile_"):
            aggregation, level = "quantile", _level(text.removeprefix("quantile_"), exact=True)
        multivariate = config.get("use_multivariate", True)  # the trading code forecasts jointly
        if multivariate not in (True, False, 0, 1):
            raise DataError(
                f"Chronos-2 use_multivariate must be true or false, got {multivariate!r}"
            )
        levels = config.get("quantile_levels", [])
        if not isinstance(levels, list) or not all(
            isinstance(q, int | float) and 0 < q < 1 for q in levels
        ):
            raise DataError(
                f"Chronos-2 quantile_levels must be a list of levels in (0, 1), got {levels!r}"
            )
        if "prediction_length" in config:
            number("Chronos-2", "prediction_length", config["prediction_length"], int)
        return cls(
            context_length=number("Chronos-2", "context_length", config["context_length"], int),
            aggregation=aggregation,
            quantile_level=level,
            use_multivariate=bool(multivariate),
        )

    @classmethod
    def from_params(cls, params: Mapping[str, object]) -> Chronos2Settings:
        # the search suggests only ``context_length`` (:meth:`Chronos2Space.suggest`): the rest
        # is what the trading code runs unless the params say otherwise
        aggregation = str(params.get("aggregation", "median"))
        level = 0.5
        if aggregation == "quantile":
            level = _level(param("Chronos-2", params, "quantile_level"), exact=False)
        return cls(
            context_length=number(
                "Chronos-2", "context_length", param("Chronos-2", params, "context_length"), int
            ),
            aggregation=aggregation,
            quantile_level=level,
            use_multivariate=bool(params.get("use_multivariate", True)),
        )

    def to_config(self) -> Config:
        """The trading code's keys (``quantile_levels`` with the point's level added)."""
        levels = sorted({*TRADING_LEVELS, *([self.quantile_level] if self.aggregation ==
                                            "quantile" else [])})  # fmt: skip
        name = f"quantile_{self.quantile_level:.2f}" if self.aggregation == "quantile" else (
            self.aggregation)  # fmt: skip
        config = {"context_length": self.context_length, "quantile_levels": levels,
                  "aggregation": name, "use_multivariate": self.use_multivariate}  # fmt: skip
        return cast(Config, config)

    def to_params(self) -> Params:
        if self.context_length not in CONTEXT_LENGTHS:
            raise DataError(
                f"Chronos-2 context_length {self.context_length} is not one of {CONTEXT_LENGTHS}"
            )
        if self.aggregation != "median" or not self.use_multivariate:
            raise DataError(
                "the Chronos-2 search runs the median of the joint (multivariate) forecast only, "
                "as the trading code does; score other settings with optimise forecast --param"
            )
        params: Params = {"context_length": self.context_length}
        return params


class Chronos2Space(ModelSpace[Chronos2Settings]):
    """Searches context length, how columns enter, and the point taken from the quantiles."""

    settings = Chronos2Settings
    trading_best = TRADING_BEST
    trading_defaults = TRADING_DEFAULTS

    def suggest(self, trial: optuna.Trial) -> Chronos2Settings:
        """Only what the trading code runs: it reads ``context_length`` from a record and always
        forecasts the four columns jointly (``predict_df`` with every target) and trades the 0.5
        quantile (``backtest_test3_inline.py`` at c059b75e), so the search never proposes
        another point or input mode: a winner it would run differently (other settings can
        still be scored with ``optimise forecast --param``)."""
        context = trial.suggest_categorical("context_length", list(CONTEXT_LENGTHS))
        return Chronos2Settings.from_params(
            {"context_length": context, "use_multivariate": True, "aggregation": "median"}
        )

    def describe(self) -> dict[str, object]:
        low, high, step = QUANTILE_GRID
        return {
            "model": "chronos2",
            "params": {
                "context_length": {"type": "categorical", "choices": list(CONTEXT_LENGTHS)},
                "use_multivariate": {
                    "type": "fixed",
                    "value": True,
                    "why": "the trading code forecasts the columns jointly",
                },
                "aggregation": {
                    "type": "fixed",
                    "value": "median",
                    "why": "the trading code trades the 0.5 quantile",
                },
                "scorable": {
                    "aggregation": list(AGGREGATIONS),
                    "quantile_level": [low, high, step],
                    "with": "optimise forecast --param",
                },
            },  # fmt: skip
            "config": "context_length, quantile_levels, aggregation "
            "(median, mean over levels, quantile_<level>), use_multivariate",
            "deterministic": "one forward pass per (window, context_length, use_multivariate)",
            "known_good_from": TRADING_BEST,
        }
