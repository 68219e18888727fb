"""A picture of the winner: the validation and test windows as a quant would look at them.

Actual closes, the winner's close forecast on the study seed (the first pass: the forecast the
title's MAEs are of) with its sample 10-90% band, the naive (last close) forecast and the trading
code's defaults' forecast; the boundary between validation and test and calendar gaps marked; the
y-axis follows the prices (the band is clipped to it, with a note when it leaves it); the title
also gives the record's objective (confirmed on fresh draws: not the drawn forecast) and the
test window's paired tests (DM-HLN). The data behind it travels in
the record (``metadata.forecasts``), so the PNG can be redrawn by whoever publishes the record.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from objectives.evaluator import Evaluator
from objectives.settings import Settings
from objectives.units import heading, scaled
from storage.record import Forecasts, Paired, Record
from studies import calendar
from studies.context import StudyContext
from studies.exceptions import StudyError

BAND = (0.1, 0.9)


def forecast_data(
    ctx: StudyContext, settings: Settings, validation: np.ndarray, test: np.ndarray
) -> Forecasts:
    """The numbers the picture shows, for both windows (forecasts already computed are reused;
    only the band's quantiles are drawn here, from the same seeds)."""
    bands = [
        _band(ctx.search_evaluator, ctx.windows.validation, settings, ctx.seed),
        _band(ctx.test_evaluator, ctx.windows.test, settings, ctx.seed),
    ]
    targets = np.concatenate([ctx.windows.validation, ctx.windows.test])
    band = np.concatenate(bands)
    return Forecasts(
        timestamps=tuple(
            str(t.astype("datetime64[s]")) + "Z" for t in ctx.bars.timestamps[targets]
        ),
        actual=tuple(ctx.bars.close[targets].tolist()),
        naive=tuple(ctx.bars.close[targets - 1].tolist()),
        forecast=(*map(float, validation), *map(float, test)),
        band_quantiles=BAND,
        band_low=tuple(band[:, 0].tolist()),
        band_high=tuple(band[:, 1].tolist()),
        validation_count=len(ctx.windows.validation),
    )


def _band(evaluator: Evaluator, targets: np.ndarray, settings: Settings, seed: int) -> np.ndarray:
    return np.asarray(evaluator.forecast_quantiles(targets, settings, seed, list(BAND)))


def _p_label(paired: Paired | None) -> str:
    """`` (test DM p 0.41)``: the legend's note of a comparator's test-window paired test."""
    return "" if paired is None else f" (test DM p {paired.p_value:.2g})"


def _paired_title(record: Record) -> str:
    """The title's second line: the test window's paired tests, if the record has them."""
    parts = [
        f"vs {name}: {record.objective} ratio "
        f"{'-' if paired.mae_ratio is None else format(paired.mae_ratio, '.3f')}, "
        f"p {paired.p_value:.2g}"
        for name, paired in (("naive", record.test.vs_naive),
                             ("trading default", record.test.vs_default))
        if paired is not None
    ]  # fmt: skip
    return "\ntest " + " | ".join(parts) + " (DM-HLN)" if parts else ""


def _mark_nonpositive(axes: Any, x: np.ndarray, data: Forecasts) -> None:
    """Red crosses where the forecast or the band's lower edge is at or below 0: impossible
    prices, drawn where they are (never clipped; ``metadata.warnings`` says how many)."""
    label = "at or below 0 (impossible; not clipped)"
    for values in (np.asarray(data.forecast), np.asarray(data.band_low)):
        bad = ~(values > 0)
        if bad.any():
            axes.plot(x[bad], values[bad], "x", color="red", markersize=9, markeredgewidth=2,
                      linestyle="none", label=label, zorder=5)  # fmt: skip
            label = "_nolegend_"


def price_limits(data: Forecasts) -> tuple[float, float]:
    """The y-axis: every price drawn (actual, naive, forecast, default) with a margin; the band
    is left out, so a wide band cannot flatten the prices."""
    series = [data.actual, data.naive, data.forecast, data.default or ()]
    values = np.concatenate([np.asarray(v, dtype=np.float64) for v in series])
    values = values[np.isfinite(values)]
    low, high = float(values.min()), float(values.max())
    pad = (high - low) * 0.08 or abs(high) * 0.01 or 1.0
    return low - pad, high + pad


def band_note(data: Forecasts, low: float, high: float) -> str | None:
    """The in-plot note when the band leaves the axis: at how many targets, how far, and how
    often its lower edge is an impossible (non-positive) price."""
    lower, upper = np.asarray(data.band_low), np.asarray(data.band_high)
    out = (lower < low) | (upper > high)
    if not out.any():
        return None
    edge = f"{int(BAND[0] * 100)}-{int(BAND[1] * 100)}% band"
    note = (
        f"{edge} clipped to the axis: it leaves it at {int(out.sum())} of {len(out)} targets "
        f"(from {lower.min():.4g} to {upper.max():.4g})"
    )
    impossible = int((~(lower > 0)).sum())
    return note + (f"; lower edge <= 0 (impossible) at {impossible}" if impossible else "")


def drawn_mae(data: Forecasts) -> tuple[tuple[float, float], tuple[float, float]]:
    """The close MAE of the drawn forecast and of naive, ``(validation, test)`` each."""
    actual, split = np.asarray(data.actual), data.validation_count
    errors = [np.abs(np.asarray(v) - actual) for v in (data.forecast, data.naive)]
    val, test = slice(0, split), slice(split, None)
    return (
        (float(errors[0][val].mean()), float(errors[1][val].mean())),
        (float(errors[0][test].mean()), float(errors[1][test].mean())),
    )


def title(record: Record, data: Forecasts) -> str:
    """What is drawn and its numbers, then the record's objective and paired tests."""
    (val, val_naive), (test, test_naive) = drawn_mae(data)
    meta, metric = record.metadata, record.objective
    draws = len(meta.selection.seeds) if meta.selection else 0
    seed = "" if meta.seed is None else f" {meta.seed}"
    return (
        f"{record.model} {record.symbol}, trial {meta.trial_number}: its close forecast on the "
        f"study seed{seed}, as drawn\n"
        f"drawn close MAE (price units): validation {val:.4g} (naive {val_naive:.4g}) | "
        f"test {test:.4g} (naive {test_naive:.4g})\n"
        f"record's {heading(metric).split(';')[0]}): validation "
        f"{scaled(metric, record.validation.metric(metric))} (mean of {draws} fresh seed sets, "
        f"not drawn) | test {scaled(metric, record.test.metric(metric))} (naive "
        f"{scaled(metric, record.test.naive(metric))})" + _paired_title(record)
    )


def _mark_below(axes: Any, x: np.ndarray, data: Forecasts, low: float) -> None:
    """Red triangles on the axis's lower edge where the band's impossible (<= 0) lower edge is
    below it, so that the crosses of :func:`_mark_nonpositive` clipped away stay marked."""
    band = np.asarray(data.band_low)
    below = ~(band > 0) & (band < low)
    if below.any():
        axes.plot(x[below], np.full(int(below.sum()), low), "v", color="red", markersize=6,
                  clip_on=False, linestyle="none", zorder=5,
                  label="band edge <= 0, below the axis")  # fmt: skip


def _day(stamp: np.datetime64) -> str:
    return str(stamp.astype("datetime64[D]"))


def _mark_gaps(axes: Any, x: np.ndarray) -> None:
    """A thin grey line between two bars further apart than usual (:mod:`studies.calendar`)."""
    label = f"calendar gap: {calendar.rule(x)}"
    for i in calendar.gaps(x):
        axes.axvline(x[i - 1] + (x[i] - x[i - 1]) / 2, color="tab:gray", linewidth=0.8,
                     linestyle=(0, (2, 2)), label=label)  # fmt: skip
        label = "_nolegend_"


def figure(record: Record) -> Any:
    """The matplotlib figure of a record's ``metadata.forecasts`` (the caller closes it)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import dates
    from matplotlib import pyplot as plt

    data = record.metadata.forecasts
    if data is None:
        raise StudyError(f"the record of {record.metadata.study_name} has no metadata.forecasts")
    x = np.array([t.rstrip("Z") for t in data.timestamps], dtype="datetime64[s]")  # UTC
    split = data.validation_count
    fig, axes = plt.subplots(figsize=(10, 5.6), dpi=100)
    axes.fill_between(
        x, data.band_low, data.band_high, color="tab:blue", alpha=0.2, step="mid",
        label=f"forecast {int(BAND[0] * 100)}-{int(BAND[1] * 100)}% of samples",
    )  # fmt: skip
    axes.plot(x, data.actual, "o-", color="black", markersize=3, label="actual close")
    axes.plot(
        x,
        data.forecast,
        "s-",
        color="tab:blue",
        markersize=3,
        zorder=4,
        label="winner forecast (study seed)",
    )  # fmt: skip (above the default it may equal)
    axes.plot(x, data.naive, "--", color="tab:gray", label="naive (last close)")
    _mark_nonpositive(axes, x, data)
    if data.default is not None:
        axes.plot(x, data.default, "^:", color="tab:orange", markersize=3,
                  label=f"trading default forecast{_p_label(record.test.vs_default)}")  # fmt: skip
    axes.axvline(x[split] - (x[split] - x[split - 1]) / 2, color="tab:red", linestyle=":")
    _mark_gaps(axes, x)
    low, high = price_limits(data)
    axes.set_ylim(low, high)
    _mark_below(axes, x, data, low)
    note = band_note(data, low, high)
    if note is not None:
        box = {"facecolor": "white", "alpha": 0.8, "edgecolor": "none"}
        axes.text(0.5, 0.02, note, transform=axes.transAxes, ha="center", va="bottom",
                  fontsize=8, bbox=box)  # fmt: skip
    axes.set_title(title(record, data), fontsize=9)
    axes.text(0.01, 0.97, "validation", transform=axes.transAxes, va="top", fontsize=8)
    axes.text(0.99, 0.97, "test", transform=axes.transAxes, va="top", ha="right", fontsize=8)
    axes.set_xlabel(f"bar date (UTC), {_day(x[0])} to {_day(x[-1])}")
    axes.set_ylabel(f"close, in {record.symbol}'s quote currency")
    locator = dates.AutoDateLocator()
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(dates.DateFormatter("%b %d"))
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3, fontsize=8)
    fig.tight_layout()
    return fig


def render(record: Record) -> bytes:
    """The PNG of a record's ``metadata.forecasts``."""
    from matplotlib import pyplot as plt

    fig = figure(record)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()
