"""Impossible forecasts: a price at or below zero.

A forecast price (any column, any step of a path) or the lower edge of its sample band at or
below 0 cannot happen; it is a sign of a model or setting that does not fit the series (a
random-weight checkpoint, a coin trading at 0.1 with a return band wider than the price). It
is flagged where it arises (the trial's attrs, the record's ``metadata.warnings``, ``status``,
the picture, ``forecast``) and never clipped: every score is of the forecast as computed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from objectives.bars import Bars
from objectives.forecasts import Forecast

#: the band's lower quantile (the picture's 10-90% band): a (target, column, step) whose draws
#: are at or below 0 at least this often has a band reaching a non-positive price
BAND_LOW = 0.1

#: the trial attrs that carry the counts (set only when not 0)
POINTS_ATTR = "nonpositive_forecasts"
BAND_ATTR = "nonpositive_band"


@dataclass(frozen=True)
class NonPositive:
    """What one forecast call got wrong: point forecasts at or below 0, and (origin, column,
    step)s with at least :data:`BAND_LOW` of their draws at or below 0, out of ``total``."""

    points: int
    band: int
    total: int
    lowest: float  # the lowest point forecast
    #: the lowest point's (origin index, column, step)
    at: tuple[int, str, int]

    @property
    def any(self) -> bool:
        return self.points > 0 or self.band > 0

    def attrs(self) -> dict[str, int]:
        """The trial attrs to set: only the counts that are not 0."""
        counts = {POINTS_ATTR: self.points, BAND_ATTR: self.band}
        return {key: value for key, value in counts.items() if value > 0}


def check(forecast: Forecast) -> NonPositive:
    """Count the impossible values of ``forecast`` (every origin, column and step)."""
    points = np.asarray(forecast.points, dtype=np.float64)
    W, C, H = points.shape
    band = 0
    for draws in forecast.draws:
        weights = np.asarray(draws.weights, dtype=np.float64)
        total = weights.sum()
        if total <= 0:
            continue
        share = np.tensordot(weights, np.asarray(draws.values) <= 0, axes=(0, 0)) / total
        band += int(np.count_nonzero(share >= BAND_LOW))
    bad = ~(points > 0)  # NaN counts as impossible too
    if points.size == 0:
        return NonPositive(0, band, 0, float("nan"), (0, "", 0))
    flat = np.where(np.isnan(points), -np.inf, points)
    w, c, h = np.unravel_index(int(np.argmin(flat)), points.shape)
    return NonPositive(
        int(np.count_nonzero(bad)), band, W * C * H, float(points[w, c, h]),
        (int(w), forecast.columns[c], int(h) + 1),
    )  # fmt: skip


def band_count(low: Sequence[float]) -> int:
    """How many band lower edges (``metadata.forecasts.band_low``) are at or below 0."""
    return int(np.count_nonzero(~(np.asarray(low, dtype=np.float64) > 0)))


def warning_lines(
    checks: Sequence[tuple[str, NonPositive, Sequence[str]]], band_low: Sequence[float] = ()
) -> list[str]:
    """The record's ``metadata.warnings``: one line for non-positive point forecasts and one
    for a band reaching non-positive prices, over the windows ``checks`` names (each
    ``(window, its check, the target timestamps of its origins)``); empty when all is well."""
    lines = []
    total = sum(f.total for _, f, _ in checks)
    points = [(name, found, stamps) for name, found, stamps in checks if found.points]
    if points:
        name, found, stamps = min(points, key=lambda item: item[1].lowest)
        origin, column, step = found.at
        when = stamps[origin] if origin < len(stamps) else f"origin {origin}"
        lines.append(
            f"{sum(f.points for _, f, _ in checks)} of {total} price forecasts at or below 0 "
            f"({_per_window(checks, 'points')}; lowest {found.lowest:.4g} (price units): {name} "
            f"{column} step {step} for {_day(when)}); kept as computed, not clipped"
        )
    edges = band_count(band_low)
    if edges or any(f.band for _, f, _ in checks):
        drawn = (
            f"; the drawn band edge as low as {float(np.min(band_low)):.4g} (price units)"
            if edges
            else ""
        )
        lines.append(
            f"the {BAND_LOW:.0%} sample quantile at or below 0 at "
            f"{sum(f.band for _, f, _ in checks)} of {total} forecasts "
            f"({_per_window(checks, 'band')}){drawn}; not clipped"
        )
    return lines


def _per_window(checks: Sequence[tuple[str, NonPositive, Sequence[str]]], what: str) -> str:
    return ", ".join(f"{name} {getattr(found, what)}" for name, found, _ in checks)


def _day(stamp: str) -> str:
    """``2013-02-28`` for a midnight timestamp, else the timestamp as it is."""
    return stamp.removesuffix("T00:00:00Z")


def record_warnings(
    bars: Bars, windows: Sequence[tuple[str, Forecast | None]], band_low: Sequence[float] = ()
) -> tuple[str, ...] | None:
    """``metadata.warnings`` of a winner forecasting ``windows`` (``(name, its forecast)``)
    with the picture's band edge ``band_low``: ``None`` when nothing is impossible."""
    checks = [
        (name, check(forecast), [_stamp(bars, int(o)) for o in forecast.origins])
        for name, forecast in windows
        if forecast is not None
    ]
    return tuple(warning_lines(checks, band_low)) or None


def _stamp(bars: Bars, row: int) -> str:
    if row >= len(bars):
        return f"row {row}"
    return str(bars.timestamps[row].astype("datetime64[s]")) + "Z"
