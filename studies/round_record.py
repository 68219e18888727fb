"""A finalisation round's :class:`Record`, built from what the round measured.

Pure: :func:`build_record` evaluates nothing and reads no database; :mod:`studies.finalise`
does the measuring (confirmation, the test window, the trading defaults, latency, picture
data) and passes it here as :class:`Measured`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from objectives.evaluator import Scored
from objectives.latency import Latency
from objectives.metrics import METRIC_NAMES, METRICS, Metrics
from objectives.sanity import record_warnings
from objectives.significance import diebold_mariano, per_target_loss
from storage.record import (
    Forecasts,
    JSONValue,
    Losses,
    Metadata,
    Paired,
    Record,
    Scores,
    Selection,
)
from studies.confirm import Candidate, confirmation_seeds
from studies.context import StudyContext
from studies.protocol_record import record_windows
from studies.selection import BEST, select
from studies.window_scores import step_scores, window_scores

#: the record's schema: 2 adds metadata.task, the metric maps, per-column and per-step scores
SCHEMA_VERSION = 2


@dataclass(frozen=True)
class Measured:
    """Everything a round measured, for :func:`build_record`."""

    best: Candidate  # the confirmed winner
    confirmed: list[Candidate]  # every confirmed candidate, ranked
    draws: int  # the confirmation's fresh seed sets
    objective_value: float | None  # the winner's first-pass value
    validation: Scored  # the winner's first pass again (its naive values, forecasts, paths)
    test: Scored  # the winner on the test window, scored once
    forecasts: Forecasts  # the picture's data, before the defaults and losses are added
    defaults: tuple[Scored, Scored] | None  # the trading defaults on validation and test
    validation_latency: Latency
    test_latency: Latency


def build_record(
    ctx: StudyContext,
    measured: Measured,
    *,
    study_uid: str | None,
    sources: dict[str, str | None],
    storage_label: str,
    complete_trials: int,
    created_at: str,
    rule: str = BEST,
) -> Record:
    """The round's record; ``complete_trials`` is the count its candidates were chosen from;
    ``rule``: ``--select`` (the winner's record, or the trading default's, ``selection.py``)."""
    best, scored_test = measured.best, measured.test
    val_metrics, test = measured.validation.metrics, scored_test.metrics
    impossible = record_warnings(
        ctx.bars, (("validation", measured.validation.paths), ("test", scored_test.paths)),
        measured.forecasts.band_low,
    )  # fmt: skip
    defaults = measured.defaults
    val_paired, val_losses = paired(ctx, val_metrics, defaults and defaults[0].metrics)
    test_paired, test_losses = paired(ctx, test, defaults and defaults[1].metrics)
    forecasts = dataclasses.replace(
        measured.forecasts,
        default=None if defaults is None else _joined(defaults[0].forecast, defaults[1].forecast),
        losses=Losses(
            metric=ctx.metric, **{k: _joined(val_losses[k], test_losses[k]) for k in val_losses}
        ),
    )
    confirmed_metrics = {m: best.mean(m) for m in METRIC_NAMES}
    per_column: dict[str, JSONValue] = {
        column: {m: best.mean(f"{column}/{m}") for m in METRIC_NAMES} for column in ctx.task.columns
    }
    validation = Scores(
        price_mae=best.mean("price_mae"),
        return_mae=best.mean("return_mae"),
        pct_return_mae=best.mean("return_mae"),
        latency_s=measured.validation_latency.latency_s,
        naive_price_mae=val_metrics.naive_price_mae,
        naive_return_mae=val_metrics.naive_return_mae,
        skill=_skill(best.mean("price_mae"), val_metrics.naive_price_mae),
        beats_naive=METRICS[ctx.metric].better(
            best.mean(ctx.metric), val_metrics.naive(ctx.metric)
        ),
        metrics=confirmed_metrics,
        naive_metrics=dict(val_metrics.naive_values),
        per_column=per_column,
        per_step=step_scores(val_metrics) if ctx.spec.horizon > 1 else None,
        vs_naive=val_paired["naive"],
        vs_default=val_paired["default"],
    )
    record = Record(
        symbol=ctx.symbol,
        model=ctx.model,
        config=ctx.named_config(best.settings.to_config()),
        validation=validation,
        test=window_scores(
            test,
            ctx.metric,
            ctx.spec.horizon,
            measured.test_latency.latency_s,
            test_paired["naive"],
            test_paired["default"],
        ),  # fmt: skip
        windows=record_windows(ctx),
        metadata=Metadata(
            source="optimise (optuna)",
            schema_version=SCHEMA_VERSION,
            study_name=ctx.name,
            study_uid=study_uid,
            trial_number=best.trial_number,
            objective=ctx.metric,
            objective_value=measured.objective_value,
            task=ctx.task.describe(ctx.model, ctx.spec.horizon),
            storage=storage_label,
            data_fingerprint=ctx.fingerprint,
            checkpoint=ctx.backend.checkpoint_id,
            sources=sources,
            seed=ctx.seed,
            min_context=ctx.spec.min_context,
            selection=_selection(ctx, best, measured.confirmed, measured.draws),
            latency={
                "validation": measured.validation_latency.as_dict(),
                "test": measured.test_latency.as_dict(),
            },
            forecasts=forecasts,
            validation_naive_price_mae=validation.naive_price_mae,
            validation_skill=validation.skill,
            test_naive_price_mae=test.naive_price_mae,
            test_skill=test.skill,
            complete_trials=complete_trials,
            validation_end=_iso(ctx.bars.timestamps[ctx.windows.validation[-1]]),
            test_end=_iso(ctx.bars.timestamps[ctx.windows.test[-1]]),
            created_at=created_at,
            warnings=impossible,
        ),
    )
    losses = {"validation": val_losses, "test": test_losses}
    return select(ctx, record, rule, defaults, losses)  # --select (issue 20 item 3)


def paired(
    ctx: StudyContext, scored: Metrics, default: Metrics | None
) -> tuple[dict[str, Paired | None], dict[str, np.ndarray]]:
    """The winner's paired tests against naive and against the trading code's defaults
    (``None`` when they were not scored) on one window (``objectives/significance.py``), and
    the per-target losses they compare."""
    loss = {
        "forecast": per_target_loss(scored, ctx.metric, ctx.task.path_score),
        "naive": per_target_loss(scored, ctx.metric, ctx.task.path_score, naive=True),
    }
    if default is not None:
        loss["default"] = per_target_loss(default, ctx.metric, ctx.task.path_score)
    tests: dict[str, Paired | None] = {
        other: Paired(**diebold_mariano(loss["forecast"], loss[other], ctx.spec.horizon).as_dict())
        if other in loss else None
        for other in ("naive", "default")
    }  # fmt: skip
    return tests, loss


def _joined(validation: Iterable[float], test: Iterable[float]) -> tuple[float, ...]:
    """Validation then test values, as ``metadata.forecasts`` holds them."""
    return (*map(float, validation), *map(float, test))


def _selection(
    ctx: StudyContext, best: Candidate, confirmed: list[Candidate], draws: int
) -> Selection:
    method = (
        f"the {len(confirmed)} best distinct configurations of the search (one seed set, "
        f"common to every trial) re-scored on {draws} fresh seed sets; the lowest "
        f"mean {ctx.metric} wins; the first pass is not part of the mean"
    )
    if ctx.deterministic:
        method += " (a deterministic model: every seed set scores the same, so one draw)"
    return Selection(
        method=method,
        first_pass_price_mae=best.first_pass["price_mae"],
        confirmed_price_mae=best.mean("price_mae"),
        confirmed_price_mae_se=best.standard_error("price_mae"),
        first_pass_return_mae=best.first_pass["return_mae"],
        confirmed_return_mae=best.mean("return_mae"),
        confirmed_return_mae_se=best.standard_error("return_mae"),
        search_seed=ctx.seed,
        seeds=tuple(confirmation_seeds(ctx.seed, draws)),
        candidates=tuple(c.summary(ctx.metric) for c in confirmed),
    )


def _skill(mae: float, naive: float) -> float:
    return 0.0 if naive == 0 else 1.0 - mae / naive


def _iso(stamp: Any) -> str:
    return str(stamp.astype("datetime64[s]")) + "Z"
