"""Each metric's unit, and how tables, warnings and pictures show a value of it.

Prices are in the symbol's own quote currency (a 0.1-dollar coin's MAE is a fraction of a cent),
return metrics are fractions of the price (shown as %), ``direction_accuracy`` a share of the
targets (shown as %).
"""

from __future__ import annotations

#: each metric's unit as it is stored (``--json``, the records)
UNITS = {
    "price_mae": "the symbol's price units",
    "return_mae": "a fraction of the price",
    "direction_accuracy": "a share of the targets",
    "calibrated_return_mae": "a fraction of the price",
    "crps": "a fraction of the price (of the return)",
}
#: how tables show each metric: a scale and the unit a heading names
SHOWN = {
    "price_mae": (1.0, "in the symbol's price units"),
    "return_mae": (100.0, "in % of the price"),
    "direction_accuracy": (100.0, "in % of the targets"),
    "calibrated_return_mae": (100.0, "in % of the price"),
    "crps": (100.0, "of the return, in % of the price"),
}
#: the unit written after a single value (``2.063% of the price``)
_SUFFIX = {
    "price_mae": " (price units)",
    "return_mae": "% of the price",
    "direction_accuracy": "% of the targets",
    "calibrated_return_mae": "% of the price",
    "crps": "% of the price",
}


def scaled(metric: str, value: float | None, digits: int = 4) -> str:
    """``value`` as its table shows it (returns in %), ``digits`` significant digits."""
    if value is None:
        return "-"
    scale = SHOWN.get(metric, (1.0, ""))[0]
    return f"{value * scale:#.{digits}g}".rstrip(".")


def with_unit(metric: str, value: float | None, digits: int = 4) -> str:
    """One value with its unit: ``2.063% of the price``, ``0.01944 (price units)``."""
    if value is None:
        return "-"
    return scaled(metric, value, digits) + _SUFFIX.get(metric, "")


def words(metric: str) -> tuple[str, str]:
    """The mark after a shown value and the words after a phrase: ``("%", " of the price")``."""
    if metric == "price_mae":
        return "", " in price units"
    if metric == "direction_accuracy":
        return "%", " of the targets"
    return ("%", " of the price") if metric in SHOWN else ("", "")


def heading(metric: str, direction: str = "minimize") -> str:
    """``return_mae (in % of the price; lower is better)``: a table's heading."""
    unit = SHOWN.get(metric, (1.0, ""))[1]
    better = "higher" if direction == "maximize" else "lower"
    return f"{metric} ({unit + '; ' if unit else ''}{better} is better)"
