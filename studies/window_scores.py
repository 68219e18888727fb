"""A window's ``Scores`` in the record, from one scoring's ``Metrics`` (the test window of a
winner, or a window of the exported trading default)."""

from __future__ import annotations

from objectives.metrics import Metrics
from storage.record import JSONObject, Paired, Scores


def step_scores(metrics: Metrics) -> tuple[JSONObject, ...]:
    """Every metric per path step, as the record's ``per_step`` holds them."""
    return tuple({m: float(v) for m, v in step.items()} for step in metrics.per_step)


def window_scores(
    metrics: Metrics,
    objective: str,
    horizon: int,
    latency_s: float,
    vs_naive: Paired | None,
    vs_default: Paired | None,
) -> Scores:
    """``metrics`` as the record's scores of one window (``per_step`` only for a path)."""
    return Scores(
        price_mae=metrics.price_mae,
        return_mae=metrics.return_mae,
        pct_return_mae=metrics.return_mae,
        latency_s=latency_s,
        naive_price_mae=metrics.naive_price_mae,
        naive_return_mae=metrics.naive_return_mae,
        skill=metrics.skill,
        beats_naive=metrics.beats_naive(objective),
        metrics=dict(metrics.values),
        naive_metrics=dict(metrics.naive_values),
        per_column={c: dict(v) for c, v in metrics.per_column.items()},
        per_step=step_scores(metrics) if horizon > 1 else None,
        vs_naive=vs_naive,
        vs_default=vs_default,
    )
