"""The choice of ``best/<SYMBOL>.json``: pure functions of the records, no disk.

:func:`choose` picks the best comparable model record and adds what ``best/`` carries;
:func:`displaces` decides whether that choice may replace the file ``best/`` holds now.

Comparable
    The anchor is the newest readable record of ours (latest ``metadata.created_at``; ties: the
    model name). A record competes with it when it has the same windows, task and objective and
    the same data fingerprint, both known. Foreign records (:mod:`storage.foreign`) are held to
    the same rule; the trading code's carry no fingerprint, task or objective, so by default
    they are another protocol and are listed, not compared.

Never displaced by a loser
    A choice whose ``validation.beats_naive`` is ``false`` never replaces another record in
    ``best/`` (the file is left as it is); it is written only where ``best/`` has no readable
    record, or where the file already names the same study and trial. A foreign ``best/`` file
    is replaced only when asked (``--replace-foreign``).
"""

from __future__ import annotations

import dataclasses
import datetime
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePath

from storage.foreign import Foreign, Stored
from storage.record import BestSelection, Compared, Excluded, Record, Windows

BEST = "best"
#: metrics a study maximises (the others are minimised); ``tests/storage`` checks this
#: against the metric registry, which storage cannot import
MAXIMISED = frozenset({"direction_accuracy"})

_OLDEST = datetime.datetime.min.replace(tzinfo=datetime.UTC)


@dataclass(frozen=True)
class Entry:
    """One model folder's file of the symbol: a record of ours, a foreign one, or an error."""

    model: str
    record: Record | None = None
    foreign: Foreign | None = None
    error: str | None = None

    @classmethod
    def of(cls, model: str, stored: Stored) -> Entry:
        if isinstance(stored, Foreign):
            return cls(model, foreign=stored)
        return cls(model, record=stored)

    @property
    def comparable_record(self) -> Record | None:
        """The record to compare: ours, or a foreign file that is one in our schema."""
        return self.record if self.record is not None else (
            self.foreign.record if self.foreign is not None else None
        )  # fmt: skip


def selection_metric(objective: str) -> str:
    """``metadata.selection_metric`` in the trading code's words: ``validation_pct_return_mae``
    for ``return_mae`` (its name of it), else ``validation_<objective>``."""
    return f"validation_{'pct_return_mae' if objective == 'return_mae' else objective}"


def improvement_pct(chosen: float, others: Sequence[float]) -> float:
    """``metadata.improvement_pct``, as the trading code's selection computes it: how much lower
    the chosen model's ``pct_return_mae`` is than the runner-up's (the lowest of the others),
    in percent of the runner-up's; 0 with no other model or a runner-up of 0 or less. Its
    chosen model is always the lowest; ours, chosen on the validation objective, may not be,
    and then the value is negative."""
    runner_up = min(others, default=None)
    if runner_up is None or not runner_up > 0:
        return 0.0
    return (runner_up - chosen) / runner_up * 100


def config_path(store: str, model: str, symbol: str) -> str:
    """``config_path`` of a ``best/`` record: the live model record's path, the store as
    given (``hyperparams/toto/BTCUSD.json`` for ``--store hyperparams``, as the trading code
    writes it)."""
    return str(PurePath(store) / model / f"{symbol}.json")


def _created_at(record: Record) -> datetime.datetime:
    try:
        stamp = datetime.datetime.fromisoformat(record.metadata.created_at)
    except ValueError:
        return _OLDEST
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=datetime.UTC)


def newer_or_same(new: Record, old: Record) -> bool:
    """Whether ``new`` was made no earlier than ``old`` (``metadata.created_at``)."""
    return _created_at(new) >= _created_at(old)


def _windows_text(windows: Windows, other: Windows) -> str:
    text = f"v{windows.val_window}-t{windows.test_window}"
    if (windows.val_blocks or 1) > 1:
        text = windows.tag().rsplit("-h", 1)[0]
    if windows.forecast_horizon != other.forecast_horizon:
        text += f"-h{windows.forecast_horizon}"
    return text


def task_key(record: Record) -> tuple[str, tuple[str, ...], str]:
    """What a study's task is, for comparisons: name, columns, path score (absent: levels)."""
    task = record.metadata.task or {}
    columns = task.get("columns")
    return (
        str(task.get("name", "levels")),
        tuple(str(c) for c in columns) if isinstance(columns, list) else ("close",),
        str(task.get("path_score", "mean")),
    )


def incomparable(record: Record, anchor: Record) -> str | None:
    """Why ``record`` cannot be compared with ``anchor`` (``None`` if it can)."""
    reasons = []
    if record.windows.key() != anchor.windows.key():
        mine = _windows_text(record.windows, anchor.windows)
        theirs = _windows_text(anchor.windows, record.windows)
        reasons.append(f"different windows ({mine} vs {theirs})")
    if task_key(record) != task_key(anchor):
        reasons.append(f"different task ({task_key(record)[0]} vs {task_key(anchor)[0]})")
    fingerprint = record.metadata.data_fingerprint
    anchor_fingerprint = anchor.metadata.data_fingerprint
    if fingerprint is None or anchor_fingerprint is None:
        reasons.append("different data fingerprint (unknown)")
    elif fingerprint != anchor_fingerprint:
        reasons.append("different data fingerprint")
    if record.objective != anchor.objective:
        reasons.append(f"different objective ({record.objective} vs {anchor.objective})")
    return "; ".join(reasons) or None


def foreign_reason(foreign: Foreign, anchor: Record) -> str:
    """Why a foreign record is not compared: another protocol (what it lacks)."""
    if foreign.record is not None:
        why = incomparable(foreign.record, anchor)
        return f"{foreign.describe()}: {why}"
    lacking = "no data fingerprint, task or objective"
    if foreign.windows is not None and foreign.windows.key() != anchor.windows.key():
        lacking = f"windows {_windows_text(foreign.windows, anchor.windows)}, {lacking}"
    return f"{foreign.describe()}: another protocol ({lacking}), not compared"


def _score(record: Record, objective: str) -> float | None:
    value = record.validation.metric(objective)
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def choose(entries: Sequence[Entry], store: str, flat_models: Sequence[str] = ()) -> Record | None:
    """The best record (with what ``best/`` adds) among comparable model records, or ``None``.

    Comparable records compete on the validation value of the anchor's objective (lowest wins,
    highest for a maximised metric; ties: the model name). Every other file is listed under
    ``metadata.best_selection.excluded`` with the reason. ``store`` is the store as given, for
    ``config_path``. ``flat_models``: the models whose ``pct_return_mae`` the trading code's
    selection writes as flat keys (``metadata.<model>_pct_return_mae``, in this order; the
    registry's ``flat_selection_models``); every compared model's is in the map.
    """
    ours = [(e, e.record) for e in sorted(entries, key=lambda e: e.model) if e.record is not None]
    if not ours:
        return None
    anchor, _ = max(ours, key=lambda pair: _created_at(pair[1]))
    assert anchor.record is not None
    objective = anchor.record.objective
    candidates: list[tuple[float, Entry, Record]] = []
    excluded = []
    for entry in sorted(entries, key=lambda e: e.model):
        record = entry.comparable_record
        if entry.error is not None or (record is None and entry.foreign is None):
            reason = f"unreadable: {entry.error}"
            excluded.append(Excluded(model=entry.model, study_name=None, reason=reason))
            continue
        if record is None or (entry.foreign is not None and incomparable(record, anchor.record)):
            assert entry.foreign is not None
            reason = foreign_reason(entry.foreign, anchor.record)
            excluded.append(Excluded(model=entry.model, study_name=None, reason=reason))
            continue
        why = None if entry is anchor else incomparable(record, anchor.record)
        score = _score(record, objective)
        if why is None and score is None:
            why = f"no finite validation {objective}"
        if why is not None:
            name = record.metadata.study_name
            excluded.append(Excluded(model=entry.model, study_name=name, reason=why))
        else:
            assert score is not None
            candidates.append((score, entry, record))
    if not candidates:
        return None
    sign = -1.0 if objective in MAXIMISED else 1.0
    _, winner, best = min(candidates, key=lambda c: (sign * c[0], c[1].model))
    selection = BestSelection(
        anchor=anchor.model,
        objective=objective,
        compared=tuple(
            Compared(
                model=entry.model,
                study_name=record.metadata.study_name,
                trial_number=record.metadata.trial_number,
                validation=score,
            )
            for score, entry, record in candidates
        ),
        excluded=tuple(excluded),
    )
    candidate_pct: dict[str, float] = {}
    for _, entry, record in candidates:
        value = record.validation.pct_return_mae
        candidate_pct[entry.model] = record.validation.return_mae if value is None else value
    winning_value = next(score for score, entry, _ in candidates if entry is winner)
    others = [value for model, value in candidate_pct.items() if model != winner.model]
    metadata = dataclasses.replace(
        best.metadata,
        selection_metric=selection_metric(objective),
        selection_value=winning_value,
        model_pct_return_mae={  # a model that was not compared keeps its flat key
            **(best.metadata.model_pct_return_mae or {}),
            **{m: candidate_pct[m] for m in flat_models if m in candidate_pct},
        }
        or None,
        candidate_pct_return_mae=candidate_pct,
        improvement_pct=improvement_pct(candidate_pct[winner.model], others),
        best_selection=selection,
    )
    return dataclasses.replace(
        best, config_path=config_path(store, winner.model, best.symbol), metadata=metadata
    )


def same_winner(a: Record, b: Record) -> bool:
    """Whether two records are the same study's same winner."""
    return (a.model, a.metadata.study_name, a.metadata.study_uid, a.metadata.trial_number) == (
        b.model,
        b.metadata.study_name,
        b.metadata.study_uid,
        b.metadata.trial_number,
    )


def loses_to_naive(record: Record) -> bool:
    """``validation.beats_naive`` is ``false`` (older records without it are not judged)."""
    return record.validation.beats_naive is False


def displaces(chosen: Record, current: Stored | None, *, replace_foreign: bool) -> str | None:
    """Why ``chosen`` may *not* replace ``current`` (the record ``best/`` holds; ``None`` for no
    file or an unreadable one); ``None`` when it may."""
    if current is None:
        return None
    if isinstance(current, Foreign):
        if not replace_foreign:
            return f"{current.describe()} left as it is; pass --replace-foreign to replace it"
        if loses_to_naive(chosen):
            return f"{current.describe()} left as it is: {_loser(chosen)}"
        return None
    if same_winner(chosen, current) or not loses_to_naive(chosen):
        return None
    return (
        f"kept the {current.model} record of study {current.metadata.study_name} trial "
        f"{current.metadata.trial_number}: {_loser(chosen)}"
    )


def _loser(record: Record) -> str:
    meta = record.metadata
    return (
        f"the new choice, the {record.model} record of study {meta.study_name} trial "
        f"{meta.trial_number}, does not beat naive on validation"
    )


def describe(stored: Stored) -> dict[str, str | int | float | None]:
    """What a "replaced ..." line needs of a file (see :func:`storage.store.summarise`)."""
    if isinstance(stored, Foreign):
        return {"model": stored.model, "foreign": stored.describe()}
    objective = stored.objective
    value = stored.validation.metric(objective)
    return {
        "model": stored.model,
        "study_name": stored.metadata.study_name,
        "trial_number": stored.metadata.trial_number,
        "objective": objective,
        "validation": value,
        f"validation_{objective}": value,
    }
