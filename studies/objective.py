"""The trial target: suggest a config, forecast the validation window, record the metrics.

Every trial samples with the study's seed set (common random numbers, docs/design-notes.md
"Seeds"), so a configuration always scores the same; a configuration that was already scored
is not evaluated again but gets its recorded value (trial attr ``duplicate_of``).
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from objectives.evaluator import Scored, evaluate
from objectives.forecasts import concat
from objectives.metrics import METRIC_NAMES, score
from objectives.sanity import BAND_ATTR, POINTS_ATTR, check
from objectives.settings import Settings, config_key
from storage.optuna_internals import set_user_attrs
from studies import attrs as keys
from studies.attrs import TrialAttrs
from studies.context import StudyContext

#: the trial attrs that carry a scoring (copied as they are to a duplicate)
SCORE_ATTRS = (
    *METRIC_NAMES,
    *(keys.naive_key(m) for m in METRIC_NAMES),
    "skill",
    "per_column",
    "val_forecasts",
    "val_paths",
    POINTS_ATTR,
    BAND_ATTR,
)


def objective(trial: optuna.Trial, ctx: StudyContext) -> float:
    """Score one trial on the validation window under the study's seed set; its attrs are
    written in one transaction at the end (``config`` alone if the scoring raises)."""
    settings = ctx.backend.space.suggest(trial)
    attrs: dict[str, Any] = {keys.CONFIG: settings.to_config()}
    earlier = _scored_before(trial, settings)
    if earlier is not None:
        attrs.update((k, earlier.user_attrs[k]) for k in SCORE_ATTRS if k in earlier.user_attrs)
        attrs.update({keys.DUPLICATE_OF: earlier.number, keys.TRIAL_COST_S: 0.0})
        set_user_attrs(trial.study, trial, attrs)
        assert earlier.value is not None
        return float(earlier.value)
    try:
        if ctx.prune_chunk:
            scored = _evaluate_in_chunks(trial, ctx, settings, attrs)
        else:
            scored = evaluate(
                ctx.search_evaluator, ctx.bars, ctx.windows.validation, settings, ctx.seed
            )
    except Exception:  # pruned (where, and what it cost) or failed: the config still shows
        set_user_attrs(trial.study, trial, attrs)
        raise
    attrs.update(scoring_attrs(scored))
    set_user_attrs(trial.study, trial, attrs)
    return scored.metrics.value(ctx.metric)


def _evaluate_in_chunks(
    trial: optuna.Trial, ctx: StudyContext, settings: Settings, attrs: dict[str, Any]
) -> Scored:
    """Forecast the validation targets a pruning step at a time (``ctx.prune_chunk`` targets
    inside each block of the protocol, :meth:`ValidationProtocol.steps`), reporting the running
    metric after each step so the study's pruner can stop a poor trial early (adding
    ``pruned_after_windows`` and ``trial_cost_s`` to ``attrs``).

    Each window's forecast depends only on its own seed, so the forecasts and the final value
    are exactly those of one call over every target."""
    targets = ctx.windows.validation
    steps = ctx.spec.protocol.steps(ctx.windows.validation_blocks, ctx.prune_chunk)
    parts = []
    seconds = 0.0
    path_score = ctx.task.path_score
    done = 0
    for step, chunk in enumerate(steps):
        part = evaluate(ctx.search_evaluator, ctx.bars, chunk, settings, ctx.seed)
        assert part.paths is not None
        parts.append(part.paths)
        seconds += part.seconds
        done += len(chunk)
        if done < len(targets):
            running = score(ctx.bars, concat(parts), path_score, names=(ctx.metric,))
            trial.report(running.value(ctx.metric), step)
            if trial.should_prune():
                attrs.update({keys.PRUNED_AFTER_WINDOWS: done,
                              keys.TRIAL_COST_S: round(seconds, 6)})  # fmt: skip
                raise optuna.TrialPruned(f"pruned after {done} of {len(targets)} windows")
    paths = concat(parts)
    return Scored(score(ctx.bars, paths, path_score), paths.lead, seconds, paths)


def scoring_attrs(scored: Scored) -> dict[str, Any]:
    """User attrs shown in optuna-dashboard beside the objective value; the forecasts let
    anyone re-score the trial exactly (``optimise forecast --window validation``)."""
    attrs: dict[str, Any] = dict(scored.metrics.as_dict())
    attrs[keys.VAL_FORECASTS] = [float(x) for x in scored.forecast]
    paths = scored.paths
    if paths is not None and (len(paths.columns) > 1 or paths.horizon > 1):
        attrs[keys.PER_COLUMN] = scored.metrics.per_column
        attrs[keys.VAL_PATHS] = {"columns": list(paths.columns),
                                 "points": paths.points.tolist()}  # fmt: skip
    if paths is not None:
        attrs.update(check(paths).attrs())  # impossible forecasts, not clipped
        attrs[keys.MODEL_PASSES] = paths.passes
        if paths.path_rows:
            attrs[keys.MODEL_PATH_ROWS] = paths.path_rows
    attrs[keys.TRIAL_COST_S] = round(scored.seconds, 6)
    return attrs


def _scored_before(trial: optuna.Trial, settings: Settings) -> FrozenTrial | None:
    """The first complete trial of the study with exactly these settings."""
    key = config_key(settings)
    for other in trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if stored_key(other) == key:
            return other
    return None


def stored_key(trial: FrozenTrial) -> str | None:
    """The canonical text of a finished trial's settings (its ``config`` attr), or ``None``."""
    stored = TrialAttrs.of(trial).config
    return None if stored is None else config_key(stored)
