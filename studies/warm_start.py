"""Warm starts: a new study first tries what won on other symbols in the same database.

Besides the trading code's known-good setting, a new study enqueues the confirmed winners of
up to :data:`MAX_WARM` other studies of the same model, search space and scoring rules in the
same storage (most recently finalised first, one per distinct setting). Each queued trial says
where it came from (user attr ``source``), which the dashboard shows.
"""

from __future__ import annotations

import json

from optuna.storages import BaseStorage

from objectives.settings import Params
from storage.listing import all_studies
from studies import attrs as keys
from studies.attrs import StudyAttrs
from studies.context import StudyContext, legacy_identity

MAX_WARM = 3


def warm_start_params(storage: BaseStorage, ctx: StudyContext) -> list[tuple[Params, str]]:
    """(params, source) of other symbols' winners that fit this study's search space."""
    identity = ctx.identity()
    found: list[tuple[str, Params, str]] = []
    for summary in all_studies(storage):
        attrs = summary.user_attrs
        winner = StudyAttrs.of(summary).winner
        if (
            summary.study_name == ctx.name
            or attrs.get(keys.MODEL) != ctx.model
            or attrs.get(keys.SYMBOL) == ctx.symbol
            or winner is None
            or _canonical(attrs.get(keys.SEARCH_SPACE)) != _canonical(identity[keys.SEARCH_SPACE])
            or attrs.get(keys.EVALUATION) != identity[keys.EVALUATION]
            or _canonical(attrs.get(keys.TASK, legacy_identity(ctx.model)[keys.TASK]))
            != _canonical(identity[keys.TASK])
        ):
            continue
        study_id = storage.get_study_id_from_name(summary.study_name)
        trial = storage.get_trial(  # the winner's trial alone, not the study's every trial
            storage.get_trial_id_from_study_id_trial_number(study_id, winner.trial_number)
        )
        source = f"warm start: winner of {summary.study_name} (trial {trial.number})"
        scored_at = (StudyAttrs.of(summary).test_scores or [{}])[-1].get("scored_at", "")
        found.append((scored_at, trial.params, source))
    out: list[tuple[Params, str]] = []
    seen: set[str] = set()
    for _, params, source in sorted(found, key=lambda f: f[0], reverse=True):
        key = _canonical(params)
        if key not in seen:
            seen.add(key)
            out.append((params, source))
        if len(out) == MAX_WARM:
            break
    return out


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, default=str)
