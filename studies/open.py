"""Create a study or resume it, refusing to mix different data, windows or models."""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.storages import BaseStorage

from objectives.exceptions import DataError
from objectives.metrics import METRICS
from objectives.registry import find
from objectives.seeds import SEED_RANGE, check_seed
from objectives.settings import Params
from studies import attrs as keys
from studies.context import (
    DATA_ROWS_ATTR,
    PERIOD_ATTR,
    PREVIOUS_ATTR,
    StudyContext,
    legacy_identity,
)
from studies.exceptions import StudyError
from studies.headline import reserve

UID_ATTR = keys.UID  # a creation nonce: the ledger keys finalisation rounds by it

logger = logging.getLogger(__name__)

OBJECTIVE_NAMES = {
    "price_mae": "validation price MAE",
    "return_mae": "validation return MAE",
    "direction_accuracy": "validation direction accuracy",
    "calibrated_return_mae": "validation calibrated return MAE",
    "crps": "validation return CRPS",
}
IDENTITY_WAIT_S = 60.0

_REFUSAL_HINT = {
    "data_fingerprint": "the data changed since the study began",
    "windows": "the windows differ",
    "checkpoint": "the checkpoint differs",
    "metric": "the metric differs",
    "search_space": "the search space changed",
    "model": "the model differs",
    "symbol": "the symbol differs",
    "task": "the forecast task differs (series, columns, horizon or path scoring)",
    "evaluation": "it was scored under older rules (per-trial seeds, batch-dependent forecasts), "
    "so its values are not comparable with new trials",
}


def _refusal_hint(key: str, model: str) -> str:
    """Why a study whose identity attr ``key`` differs is not resumed (for the search space,
    with the model's own account of how its space changed)."""
    hint = _REFUSAL_HINT[key]
    found = find(model) if key == "search_space" else None
    return f"{hint} ({found.space_history})" if found and found.space_history else hint


def open_study(
    storage: BaseStorage,
    ctx: StudyContext,
    *,
    create: bool = True,
    storage_label: str = "sqlite:///studies.db",
    warm_start: bool = True,
    previous: Sequence[tuple[Params, str]] = (),
    previous_study: str | None = None,
    seed_given: bool = True,
) -> optuna.Study:
    """Resume ``ctx.name`` if it exists (after checking its identity) or create it.

    Exactly one of several workers starting together creates the study, writes its user attrs
    and enqueues ``previous`` (a refresh: the last period's confirmed candidates, named
    ``previous_study``), the known-good settings and the warm starts, in that order; the
    others wait for those attrs and resume. With ``create=False`` a missing study is an error.
    An existing study keeps its stored seed; a different ``ctx.seed`` gets one warning line
    on stderr unless ``seed_given`` is false (the seed was a default nobody asked for).
    """
    if not create:
        try:
            study = optuna.load_study(study_name=ctx.name, storage=storage)
        except KeyError:
            raise StudyError(f"no study {ctx.name}; run `optimise launch` first") from None
        _check_identity(study, ctx, storage_label, resuming=False, seed_given=seed_given)
        return study
    try:
        study = optuna.create_study(
            study_name=ctx.name,
            storage=storage,
            direction=METRICS[ctx.metric].direction,
            load_if_exists=False,
        )
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=ctx.name, storage=storage)
        _check_identity(study, ctx, storage_label, resuming=True, seed_given=seed_given)
        return study
    study.set_metric_names([OBJECTIVE_NAMES.get(ctx.metric, f"validation {ctx.metric}")])
    for params, source in previous:
        study.enqueue_trial(params, user_attrs={keys.SOURCE: source}, skip_if_exists=True)
    for params in ctx.backend.space.known_good():
        study.enqueue_trial(
            params, user_attrs={keys.SOURCE: "known good (trading code)"}, skip_if_exists=True
        )
    if warm_start:
        from studies.warm_start import warm_start_params

        for params, source in warm_start_params(storage, ctx):
            study.enqueue_trial(params, user_attrs={keys.SOURCE: source}, skip_if_exists=True)
    reserve(study)  # the dashboard's first attrs: the winner's headline once finalised
    study.set_user_attr(UID_ATTR, uuid.uuid4().hex)
    study.set_user_attr(keys.SEED, ctx.seed)
    study.set_user_attr(keys.SOURCES, ctx.sources)
    study.set_user_attr(DATA_ROWS_ATTR, ctx.windows.test_end)  # the rows data_fingerprint covers
    study.set_user_attr(PERIOD_ATTR, ctx.period_tag)
    if previous_study is not None:
        study.set_user_attr(PREVIOUS_ATTR, previous_study)
    for key, value in ctx.identity().items():
        study.set_user_attr(key, value)
    study.set_user_attr(keys.TEST_SCORES, [])  # set last: the study is initialised
    logger.info("created study %s", ctx.name)
    return study


def delete_hint(name: str, storage_label: str) -> str:
    """A command that deletes the study, pasteable (a redacted password reads the env var)."""
    return f"optuna delete-study --storage {storage_arg(storage_label)} --study-name '{name}'"


def storage_arg(storage_label: str) -> str:
    """``--storage``'s value for a command to paste: the label quoted, or, when a password or
    secret parameter was redacted from it, the environment variable that holds the URL."""
    if "***" in storage_label or "REDACTED" in storage_label:
        return '"$OPTIMISE_STORAGE"'
    return f"'{storage_label}'"


def _check_identity(
    study: optuna.Study,
    ctx: StudyContext,
    storage_label: str,
    *,
    resuming: bool,
    seed_given: bool = True,
) -> None:
    deadline = time.monotonic() + IDENTITY_WAIT_S
    expected = ctx.identity()
    while True:
        attrs = study.user_attrs
        if keys.TEST_SCORES in attrs or all(key in attrs for key in expected):  # set last
            break
        if time.monotonic() > deadline:
            raise StudyError(
                f"study {ctx.name} exists but was never initialised; delete it "
                f"({delete_hint(ctx.name, storage_label)}) and launch again"
            )
        time.sleep(0.2)
    legacy = legacy_identity(ctx.model)
    for key, value in expected.items():
        stored = attrs.get(key, legacy.get(key, "(absent)"))
        if _canonical(stored) != _canonical(value):
            what = "refusing to resume" if resuming else "cannot export"
            raise StudyError(
                f"{what} study {ctx.name}: {_refusal_hint(key, ctx.model)} "
                f"(stored {_shown(stored)}, now {_shown(value)}); use another --storage or "
                f"delete the study: {delete_hint(ctx.name, storage_label)}"
            )
    stored_seed = attrs.get("seed", ctx.seed)
    try:
        check_seed(stored_seed)
    except DataError:
        what = "refusing to resume" if resuming else "cannot export"
        raise StudyError(
            f"{what} study {ctx.name}: its stored seed {_shown(stored_seed)} is impossible (a "
            f"seed is {SEED_RANGE}); delete the study: {delete_hint(ctx.name, storage_label)}"
        ) from None
    if stored_seed != ctx.seed and seed_given:
        print(seed_warning(ctx.name, stored_seed, ctx.seed, storage_label), file=sys.stderr)
    ctx.seed = int(stored_seed)


def seed_warning(name: str, stored: object, asked: int, storage_label: str) -> str:
    """The one-line warning for a ``--seed`` an existing study does not take."""
    return (
        f"warning: study {name} keeps its seed {stored}; --seed {asked} is not used (every "
        "trial of a study is scored on the study's seed set, so its values stay comparable); "
        f"for another seed use another --storage or delete the study: "
        f"{delete_hint(name, storage_label)}"
    )


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _shown(value: Any) -> str:
    """A value for a one-line message: whole when short or a plain string (paths are never
    cut), else a digest of its canonical form."""
    if isinstance(value, str) and len(value) <= 200:
        return repr(value)
    text = _canonical(value)
    if len(text) <= 80:
        return text
    import hashlib

    return f"<{type(value).__name__} {hashlib.sha256(text.encode()).hexdigest()[:8]}>"
