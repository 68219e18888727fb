"""A picture of the winner: the validation and test windows as a quant would look at them.

Actual closes, the winner's forecast with its sample 10-90% band, the naive (last close) forecast
and the trading code's defaults' forecast, with the boundary between validation and test marked
and the test window's paired tests (DM-HLN) in the title. The data behind it travels in
the record (``metadata.forecasts``), so the PNG can be redrawn by whoever publishes the record.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from objectives.evaluator import Evaluator
from objectives.settings import Settings
from storage.record import Forecasts, Paired, Record
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


def render(record: Record) -> bytes:
    """The PNG of a record's ``metadata.forecasts``."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    data = record.metadata.forecasts
    if data is None:
        raise StudyError(f"the record of {record.metadata.study_name} has no metadata.forecasts")
    x = np.array([t.rstrip("Z") for t in data.timestamps], dtype="datetime64[s]")  # UTC
    split = data.validation_count
    figure, axes = plt.subplots(figsize=(10, 4.5), dpi=100)
    axes.fill_between(
        x, data.band_low, data.band_high, color="tab:blue", alpha=0.2, step="mid",
        label=f"forecast {int(BAND[0] * 100)}-{int(BAND[1] * 100)}% of samples",
    )  # fmt: skip
    axes.plot(x, data.actual, "o-", color="black", markersize=3, label="actual close")
    axes.plot(x, data.forecast, "s-", color="tab:blue", markersize=3, label="winner forecast")
    axes.plot(x, data.naive, "--", color="tab:gray", label="naive (last close)")
    _mark_nonpositive(axes, x, data)
    if data.default is not None:
        axes.plot(x, data.default, "^:", color="tab:orange", markersize=3,
                  label=f"trading default forecast{_p_label(record.test.vs_default)}")  # fmt: skip
    axes.axvline(x[split] - (x[split] - x[split - 1]) / 2, color="tab:red", linestyle=":")
    validation, test = record.validation, record.test
    axes.set_title(
        f"{record.model} {record.symbol}, trial {record.metadata.trial_number}: "
        f"validation MAE {validation.price_mae:.4g} (naive {validation.naive_price_mae:.4g})"
        f" | test MAE {test.price_mae:.4g} (naive {test.naive_price_mae:.4g})"
        + _paired_title(record),
        fontsize=9,
    )
    axes.text(0.01, 0.97, "validation", transform=axes.transAxes, va="top", fontsize=8)
    axes.text(0.99, 0.97, "test", transform=axes.transAxes, va="top", ha="right", fontsize=8)
    axes.set_ylabel("close")
    axes.legend(loc="lower left", fontsize=8)
    figure.autofmt_xdate()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()
