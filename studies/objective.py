"""The trial target: suggest a config, forecast the validation window, record the metrics."""

from __future__ import annotations

import optuna

from objectives.evaluator import evaluate, trial_seed
from objectives.metrics import Metrics
from studies.context import StudyContext


def objective(trial: optuna.Trial, ctx: StudyContext) -> float:
    """Score one trial on the validation window; its seed depends on study seed and number."""
    config = ctx.backend.space.suggest(trial)
    seed = trial_seed(ctx.seed, trial.number)
    metrics = evaluate(ctx.search_evaluator, ctx.bars, ctx.windows.validation, config, seed)
    record_metrics(trial, metrics)
    trial.set_user_attr("config", config)
    return float(getattr(metrics, ctx.metric))


def record_metrics(trial: optuna.Trial, metrics: Metrics) -> None:
    """User attrs shown in optuna-dashboard beside the objective value."""
    for key, value in metrics.as_dict().items():
        trial.set_user_attr(key, round(value, 10))
