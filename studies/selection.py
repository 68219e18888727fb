"""Selection under sample noise (``--select``): export the search's winner, or the trading
code's default when the winner's validation edge over it is not significant.

``best`` (the default) exports the confirmed winner, as always. ``default-if-insignificant``
exports the trading code's default settings unless the winner's validation loss is lower than
the default's with a paired Diebold-Mariano p-value below 0.05 (``validation.vs_default``,
first passes on common draws). The exported record then holds the default's config (in the
trading code's keys) and its validation and test scores on the same targets under the study
seed: the default was not chosen on those draws, so its first pass is not optimistic and needs
no confirmation. ``metadata.selection`` says which was chosen and why.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from objectives.evaluator import Scored
from objectives.latency import live_latency
from objectives.metrics import Metrics
from objectives.significance import ALPHA, diebold_mariano
from storage.record import JSONObject, Paired, Record, Scores
from studies.context import StudyContext
from studies.window_scores import window_scores

BEST = "best"
DEFAULT_IF_INSIGNIFICANT = "default-if-insignificant"
RULES = (BEST, DEFAULT_IF_INSIGNIFICANT)


def choose(record: Record) -> tuple[str, str, float | None]:
    """``(chosen, reason, p_value)`` under ``default-if-insignificant`` for the winner's
    record: ``winner`` when its validation edge over the default is significant."""
    paired = record.validation.vs_default
    if paired is None:
        raise ValueError("the default was not scored: --select needs the default comparison")
    if paired.significant_edge(ALPHA):
        reason = (
            f"the winner's validation {record.objective} is lower than the trading code's "
            f"default's with p = {paired.p_value:.3g} < {ALPHA}"
        )
        return "winner", reason, paired.p_value
    lower = paired.mae_ratio is not None and paired.mae_ratio < 1
    reason = (
        f"the winner's validation edge over the trading code's default is not significant "
        f"(p = {paired.p_value:.3g} >= {ALPHA})"
        if lower
        else f"the winner's validation {record.objective} is not lower than the trading "
        f"code's default's (p = {paired.p_value:.3g})"
    )
    return "default", reason, paired.p_value


def select(
    ctx: StudyContext,
    record: Record,
    rule: str,
    defaults: tuple[Scored, Scored] | None,
    naive_losses: Mapping[str, Mapping[str, np.ndarray]],
) -> Record:
    """The record to export under ``rule``: ``record`` (the winner's), or the default's.
    ``naive_losses``: per window (``validation``, ``test``), the per-target losses of
    ``default`` and ``naive`` that the paired tests compared."""
    if rule == BEST:
        return record
    chosen, reason, p_value = choose(record)
    selection = record.metadata.selection
    assert selection is not None
    marked = dataclasses.replace(
        selection, rule=rule, chosen=chosen, reason=reason, p_value=p_value
    )
    if chosen == "winner":
        return dataclasses.replace(
            record, metadata=dataclasses.replace(record.metadata, selection=marked)
        )
    assert defaults is not None
    default = ctx.backend.space.trading_default()
    scores = []
    latency: dict[str, JSONObject] = {}
    for name, scored, bars_end, targets in (
        ("validation", defaults[0], ctx.windows.validation_end, ctx.windows.validation),
        ("test", defaults[1], ctx.windows.test_end, ctx.windows.test),
    ):
        timed = live_latency(
            ctx.backend, ctx.bars.head(bars_end), targets, default, ctx.seed, ctx.task,
            ctx.spec.horizon,
        )  # fmt: skip
        latency[name] = timed.as_dict()
        losses = naive_losses[name]
        vs_naive = diebold_mariano(losses["default"], losses["naive"], ctx.spec.horizon)
        scores.append(_scores(ctx, scored.metrics, timed.latency_s, Paired(**vs_naive.as_dict())))
    metadata = dataclasses.replace(
        record.metadata,
        selection=marked,
        objective_value=scores[0].metric(ctx.metric),
        latency=latency,
        validation_naive_price_mae=scores[0].naive_price_mae,
        validation_skill=scores[0].skill,
        test_naive_price_mae=scores[1].naive_price_mae,
        test_skill=scores[1].skill,
    )
    return dataclasses.replace(
        record,
        config=ctx.named_config(default.to_config()),
        validation=scores[0],
        test=scores[1],
        metadata=metadata,
    )


def exported_default(record: Record) -> bool:
    """Whether ``--select`` exported the trading code's default rather than the winner (its
    validation is then a first pass: no confirmation standard error)."""
    selection = record.metadata.selection
    return selection is not None and selection.chosen == "default"


def summary_of(record: Record) -> dict[str, str]:
    """What the study's ``winner`` attr adds for ``status`` when the default was exported (its
    warning line); nothing otherwise, so other winners' attrs stay as they were."""
    line = launch_line(record)
    return {} if line is None else {"exported": "default", "selection_warning": line}


def launch_line(record: Record) -> str | None:
    """One warning line when the exported config is the trading code's default."""
    selection = record.metadata.selection
    if selection is None or not exported_default(record):
        return None
    return (
        f"warning: {record.metadata.study_name}: exported the trading code's default settings, "
        f"not trial {record.metadata.trial_number}: {selection.reason} (--select "
        f"{selection.rule}); the record's validation and test numbers are the default's"
    )


def _scores(ctx: StudyContext, metrics: Metrics, latency_s: float, vs_naive: Paired) -> Scores:
    """A window's scores of the default (``vs_default`` absent: it is the default)."""
    return window_scores(metrics, ctx.metric, ctx.spec.horizon, latency_s, vs_naive, None)
