"""Confirmation: the few best configurations re-scored on fresh Monte-Carlo draws.

The search compares configurations on one seed set (common random numbers), so its minimum is
still a draw that flattered the winner. Before export the ``K`` best distinct configurations
are re-scored on the validation window with ``R`` further seed sets
(:func:`objectives.evaluator.confirmation_seed`); the winner is the lowest mean of the study's
metric, and that mean with its Monte-Carlo standard error is what the store reports. The first
pass is left out of the mean: it is the draw the selection favoured.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from objectives.evaluator import confirmation_seed, evaluate
from objectives.metrics import METRIC_NAMES, METRICS, Metrics
from objectives.settings import Settings
from storage.record import JSONObject
from studies.context import StudyContext
from studies.objective import stored_key

DEFAULT_CANDIDATES = 5
DEFAULT_DRAWS = 8


@dataclass(frozen=True)
class Candidate:
    """One configuration's first pass and its confirmation draws."""

    trial_number: int
    settings: Settings
    first_pass: dict[str, float]  # each metric the trial recorded, on the search's seed set
    #: one per confirmation seed: each metric, and ``<column>/<metric>`` per column
    draws: list[dict[str, float]] = field(default_factory=list)
    #: a deterministic model: every seed set scores the same, one draw, no spread
    deterministic: bool = False

    def mean(self, metric: str) -> float:
        return float(np.mean([d[metric] for d in self.draws]))

    def standard_error(self, metric: str) -> float:
        values = [d[metric] for d in self.draws]
        if self.deterministic:
            return 0.0  # exactly: no seed moves a deterministic forecast (never NaN in JSON)
        if len(values) < 2:
            return math.nan
        return float(np.std(values, ddof=1) / math.sqrt(len(values)))

    def summary(self, metric: str) -> JSONObject:
        return {
            "trial_number": self.trial_number,
            "config": dict(self.settings.to_config()),  # a copy typed as JSON (dict is invariant)
            f"first_pass_{metric}": self.first_pass.get(metric, math.nan),
            f"confirmed_{metric}": self.mean(metric),
            f"confirmed_{metric}_se": self.standard_error(metric),
        }


def ranking_key(study: optuna.Study) -> Callable[[FrozenTrial], tuple[float, int]]:
    """Sort key of complete trials, best first, under the study's direction."""
    sign = -1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1.0
    return lambda t: (sign * float(t.value if t.value is not None else math.inf), t.number)


def candidates(
    study: optuna.Study, k: int, complete: Sequence[FrozenTrial] | None = None
) -> list[FrozenTrial]:
    """The ``k`` best complete trials, one per distinct configuration (of ``complete``, the
    study's complete trials read once by the caller, or read here)."""
    if complete is None:
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    chosen: dict[str, FrozenTrial] = {}
    for trial in sorted(complete, key=ranking_key(study)):
        key = stored_key(trial) or json.dumps(trial.params, sort_keys=True)
        chosen.setdefault(key, trial)
        if len(chosen) == k:
            break
    return list(chosen.values())


def confirm(ctx: StudyContext, trials: list[FrozenTrial], draws: int) -> list[Candidate]:
    """Re-score each trial's configuration on ``draws`` fresh seed sets of the validation window."""
    seeds = confirmation_seeds(ctx.seed, draws)
    out = []
    for trial in trials:
        settings = ctx.backend.space.from_params(trial.params)
        first = {m: float(trial.user_attrs[m]) for m in METRIC_NAMES if m in trial.user_attrs}
        scored = [
            evaluate(ctx.search_evaluator, ctx.bars, ctx.windows.validation, settings, seed)
            for seed in seeds
        ]
        draws_of = [_flat(s.metrics) for s in scored]
        out.append(Candidate(trial.number, settings, first, draws_of, ctx.deterministic))
    return out


def confirmation_seeds(study_seed: int, draws: int) -> list[int]:
    return [confirmation_seed(study_seed, r) for r in range(1, draws + 1)]


def winner(confirmed: list[Candidate], metric: str) -> Candidate:
    """The best confirmed mean of ``metric`` under its direction (ties: the better first
    pass, which comes first)."""
    sign = -1.0 if METRICS[metric].direction == "maximize" else 1.0
    return min(confirmed, key=lambda c: sign * c.mean(metric))


def _flat(metrics: Metrics) -> dict[str, float]:
    flat = {m: metrics.value(m) for m in METRIC_NAMES}
    for column, values in metrics.per_column.items():
        flat.update({f"{column}/{m}": float(v) for m, v in values.items()})
    return flat
