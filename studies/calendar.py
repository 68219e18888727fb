"""Calendar gaps in a series of bars: where consecutive bars are further apart than usual.

A gap is a step longer than the series' median step. For a daily business-day series (median
step one day, no bar on a Saturday or Sunday: stocks) the regular weekend is not a gap, a
weekday without a bar (a holiday, a missing day) is. Crypto trades every day, so a weekend
missing from a daily crypto series is a gap.
"""

from __future__ import annotations

import numpy as np

DAY = np.timedelta64(1, "D")


def business_daily(stamps: np.ndarray) -> bool:
    """Daily bars on weekdays only (a stock's calendar)."""
    if len(stamps) < 2:
        return False
    days = stamps.astype("datetime64[D]")
    return bool(np.median(np.diff(stamps)) == DAY and np.is_busday(days).all())


def gaps(stamps: np.ndarray) -> np.ndarray:
    """Indices ``i`` of the bars that follow a gap (``stamps[i - 1]`` to ``stamps[i]``)."""
    if len(stamps) < 2:
        return np.zeros(0, dtype=np.int64)
    if business_daily(stamps):
        days = stamps.astype("datetime64[D]")
        skipped = np.busday_count(days[:-1] + DAY, days[1:])  # weekdays strictly between
        return np.flatnonzero(skipped > 0) + 1
    steps = np.diff(stamps)
    return np.flatnonzero(steps > np.median(steps)) + 1


def rule(stamps: np.ndarray) -> str:
    """The gap rule that applied to ``stamps``, for a legend."""
    if business_daily(stamps):
        return "a weekday without a bar (weekends are not gaps)"
    if len(stamps) < 2:
        return "a step over the median step"
    median = np.median(np.diff(stamps).astype("timedelta64[s]").astype(np.int64))
    return f"a step over the median step, {span(float(median))}"


def span(seconds: float) -> str:
    """``1 day``, ``4 h``, ``15 min``, ``30 s``."""
    for size, unit in ((86400, "day"), (3600, "h"), (60, "min")):
        if seconds >= size:
            count = seconds / size
            text = f"{count:g}"
            return f"{text} {unit}{'s' if unit == 'day' and count != 1 else ''}"
    return f"{seconds:g} s"
