"""Refresh: bars appended to a symbol's data start the next period's study.

A study records its ``data_fingerprint`` (a hash of the rows it used, up to the end of its
test window) and, since refreshes exist, how many rows that is (``data_rows``). A symbol's
studies of one (model, windows, task, metric) form a chain of periods: the first keeps the
plain name (``toto:AAPL:v20-t20-h1:trading``), each later one adds its period tag, the date of
its last validation target (``…:trading@2013-03-01``). On launch:

* the data has the fingerprint of a period of the chain: that study is resumed (or exported);
* the latest period's rows are a prefix of the data, unchanged, and bars follow them: the next
  period starts, with the latest period's confirmed candidates queued first;
* otherwise (a past row edited or removed, a study made before ``data_rows`` existed, or
  ``--no-refresh``) the latest period is opened and refused as before, with the delete hint.

The tag is a function of the data, so several workers refreshing together name the same
study and one of them creates it (:func:`studies.open.open_study`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.trial import TrialState

from objectives.metrics import METRICS
from objectives.settings import Params
from storage.listing import all_studies
from studies.attrs import DATA_FINGERPRINT, StudyAttrs
from studies.context import (
    DATA_ROWS_ATTR,
    PERIOD_ATTR,
    PERIOD_SEP,
    StudyContext,
    legacy_identity,
)
from studies.exceptions import StudyError
from studies.open import UID_ATTR, delete_hint


@dataclass(frozen=True)
class Period:
    """One study of a chain: its name, the tag in that name (``None``: the first), its attrs."""

    name: str
    tag: str | None
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The period's date: its ``period`` attr, else the tag; ``?`` for a study made
        before periods existed."""
        return str(self.attrs.get(PERIOD_ATTR) or self.tag or "?")


@dataclass(frozen=True)
class Refresh:
    """The next period's study and what it takes from the previous one."""

    previous: Period
    study: str
    old_rows: int
    new_rows: int
    candidates: list[tuple[Params, str]]

    def line(self) -> str:
        """What launch prints: which study starts, and why."""
        queued = len(self.candidates)
        confirmed = not any("not confirmed" in source for _, source in self.candidates)
        what = "confirmed candidate" if confirmed else "best trial (not confirmed)"
        if queued != 1:
            what = "confirmed candidates" if confirmed else "best trials (not confirmed)"
        return (
            f"bars appended since {self.previous.name} ({self.old_rows} -> {self.new_rows} "
            f"rows): starting {self.study} (the last period's {queued} {what} queued first)"
        )


def split_name(name: str) -> tuple[str, str | None]:
    """``(base name, period tag or None)`` of a study name."""
    base, sep, tag = name.rpartition(PERIOD_SEP)
    return (base, tag) if sep else (name, None)


def chains(names: Iterable[str]) -> dict[str, list[str]]:
    """Study names grouped by base name, each chain oldest period first."""
    out: dict[str, list[tuple[str, str]]] = {}
    for name in names:
        base, tag = split_name(name)
        out.setdefault(base, []).append((tag or "", name))
    return {base: [n for _, n in sorted(members)] for base, members in out.items()}


def latest_periods(names: Iterable[str]) -> set[str]:
    """The newest period of each chain (what ``export --all`` exports)."""
    return {members[-1] for members in chains(names).values()}


def periods(storage: BaseStorage, base: str) -> list[Period]:
    """The chain of ``base``: every initialised study named ``base`` or ``base@<tag>``,
    oldest first."""
    found = []
    for summary in all_studies(storage):
        name = summary.study_name
        if (name == base or name.startswith(base + PERIOD_SEP)) and split_name(name)[0] == base:
            if UID_ATTR in summary.user_attrs:
                found.append(Period(name, split_name(name)[1], dict(summary.user_attrs)))
    return sorted(found, key=lambda p: (p.tag is not None, p.tag or ""))


def resolve_period(
    storage: BaseStorage,
    ctx: StudyContext,
    storage_label: str,
    *,
    refresh: bool = True,
) -> Refresh | None:
    """Set ``ctx.period`` to the study this data belongs to; a :class:`Refresh` when that is
    a new period (bars appended since the latest one), else ``None``.

    Raises :class:`StudyError` (one line, with the delete hint) when the latest period is
    refreshable but rows it used changed.
    """
    chain = periods(storage, ctx.base_name)
    ctx.period = None
    if not chain:
        return None
    current = ctx.fingerprint
    for member in chain:
        if member.attrs.get(DATA_FINGERPRINT) == current:
            ctx.period = member.tag
            return None
    latest = chain[-1]
    ctx.period = latest.tag  # unless this is a refresh, open_study refuses it as before
    rows = latest.attrs.get(DATA_ROWS_ATTR)
    if isinstance(rows, bool) or not isinstance(rows, int):  # absent: made before refresh
        return None
    if not refresh or not _same_rest(latest.attrs, ctx):
        return None
    stored = latest.attrs.get("data_fingerprint")
    if rows >= len(ctx.bars) or ctx.bars.fingerprint(rows) != stored:
        raise StudyError(
            f"refusing to resume study {latest.name}: the data changed since the study began "
            f"(a row of the {rows} it used was edited or removed, not only bars appended); use "
            f"another --storage or delete the study: {delete_hint(latest.name, storage_label)}"
        )
    ctx.period = ctx.period_tag
    if ctx.name == latest.name:  # cannot happen with increasing timestamps; refuse, not mix
        ctx.period = latest.tag
        return None
    return Refresh(
        previous=latest,
        study=ctx.name,
        old_rows=rows,
        new_rows=ctx.windows.test_end,
        candidates=previous_candidates(storage, latest.name),
    )


def _same_rest(attrs: dict[str, Any], ctx: StudyContext) -> bool:
    """Whether every identity attr but the data's matches: a refresh changes the data only
    (a changed checkpoint or search space is refused by open_study, naming it)."""
    legacy = legacy_identity(ctx.model)
    return all(
        _canonical(attrs.get(key, legacy.get(key))) == _canonical(value)
        for key, value in ctx.identity().items()
        if key != "data_fingerprint"
    )


def previous_candidates(storage: BaseStorage, name: str) -> list[tuple[Params, str]]:
    """The confirmed candidates of study ``name``, best confirmed mean first (its winner);
    for a study never finalised, its best complete trials by their first pass."""
    study = optuna.load_study(study_name=name, storage=storage)
    attrs = StudyAttrs.of(study)
    confirmation = attrs.confirmation or {}
    listed = confirmation.get("candidates") if isinstance(confirmation, dict) else None
    metric = attrs.metric
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    out: list[tuple[Params, str]] = []
    if listed:
        sign = -1.0 if METRICS[metric].direction == "maximize" else 1.0

        def confirmed(candidate: dict[str, Any]) -> float:
            value = candidate.get(f"confirmed_{metric}")
            return sign * float(value) if isinstance(value, (int, float)) else math.inf

        for candidate in sorted(listed, key=confirmed):
            trial = trials.get(candidate.get("trial_number"))
            if trial is not None and trial.params:
                out.append((dict(trial.params), f"refresh: confirmed candidate of {name} "
                                                f"(trial {trial.number})"))  # fmt: skip
        return out
    from studies.confirm import DEFAULT_CANDIDATES, candidates

    for trial in candidates(study, DEFAULT_CANDIDATES):
        if trial.state == TrialState.COMPLETE and trial.params:
            out.append((dict(trial.params), f"refresh: best trial of {name} (trial "
                                            f"{trial.number}, not confirmed)"))  # fmt: skip
    return out


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, default=str)
