"""The study and trial user attrs: every key named once, and typed readers of them.

Writers use the key constants; readers build :class:`StudyAttrs` / :class:`TrialAttrs` from an
Optuna study, study summary or frozen trial. Studies made by older versions lack some keys:
each reader has the default an older study means (``price_mae`` for the metric, seed 0, the
model and symbol from the study name), never an error. The ``winner`` attr is what ``status``
shows of the exported record without reading the store (:func:`winner_summary`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from objectives.sanity import BAND_ATTR, POINTS_ATTR
from storage.record import DEFAULT_OBJECTIVE, JSONValue, Record, Scores, Selection
from studies.exceptions import StudyError

# --- study attrs, set when the study is created (``studies.open``) --------------------------
UID = "study_uid"  # a creation nonce: the ledger keys finalisation rounds by it
SEED = "seed"
SOURCES = "sources"  # checkpoint, tokenizer, data_dir as launch got them
DATA_ROWS = "data_rows"  # how many rows data_fingerprint covers
PERIOD = "period"  # the period's tag of a refreshable study
PREVIOUS_PERIOD = "previous_period"
# the study's identity (``StudyContext.identity``): must match for a study to be resumed
MODEL = "model"
SYMBOL = "symbol"
DATA_FINGERPRINT = "data_fingerprint"
WINDOWS = "windows"
CHECKPOINT = "checkpoint"
METRIC = "metric"
SEARCH_SPACE = "search_space"
EVALUATION = "evaluation"
TASK = "task"
# --- study attrs, set by finalisation (``studies.publish``) -------------------------------
TEST_SCORES = "test_scores"  # one row per finished round, oldest first (set last on creation)
EXPORT_PATH = "export_path"  # the study's own record
STORE = "store"  # the store it was published to
CONFIRMATION = "confirmation"  # the record's metadata.selection
WINNER = "winner"  # :func:`winner_summary`
ARTIFACT_STORE = "artifact_store"  # optuna-dashboard's artifacts (the pictures)

# --- trial attrs --------------------------------------------------------------------------
SOURCE = "source"  # why an enqueued trial was enqueued
CONFIG = "config"  # the settings in the trading code's keys
WORKER = "worker"  # the worker running it
FAIL_REASON = "fail_reason"
INTERRUPTED = "interrupted"
DUPLICATE_OF = "duplicate_of"  # the earlier trial whose scores it copied
TRIAL_COST_S = "trial_cost_s"
PRUNED_AFTER_WINDOWS = "pruned_after_windows"
VAL_FORECASTS = "val_forecasts"
PER_COLUMN = "per_column"
VAL_PATHS = "val_paths"
MODEL_PASSES = "model_passes"
MODEL_PATH_ROWS = "model_path_rows"
NONPOSITIVE_FORECASTS = POINTS_ATTR
NONPOSITIVE_BAND = BAND_ATTR


def naive_key(metric: str) -> str:
    """The trial attr of the naive forecast's value of ``metric``."""
    return f"naive_{metric}"


class _HasAttrs(Protocol):
    @property
    def study_name(self) -> str: ...

    @property
    def user_attrs(self) -> dict[str, Any]: ...


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _mapping(value: object) -> dict[str, Any] | None:
    return dict(value) if isinstance(value, Mapping) else None


@dataclass(frozen=True)
class Winner:
    """The ``winner`` attr: the exported record's winner as ``status`` shows it.

    ``validation`` and ``test`` are parsed on use (a malformed attr fails there, naming it)."""

    raw: Mapping[str, Any]

    @property
    def study_name(self) -> str:
        return str(self.raw["study_name"])

    @property
    def trial_number(self) -> int:
        return int(self.raw["trial_number"])

    @property
    def objective(self) -> str:
        return str(self.raw.get("objective") or DEFAULT_OBJECTIVE)

    @property
    def validation(self) -> Scores:
        return Scores.parse(self.raw["validation"], "the winner attr's validation")

    @property
    def test(self) -> Scores:
        return Scores.parse(self.raw["test"], "the winner attr's test")

    @property
    def warnings(self) -> list[str]:
        """Impossible forecasts of the winner (absent from older attrs: none)."""
        return list(self.raw.get("warnings") or [])

    @property
    def exported_default(self) -> bool:
        """``--select`` exported the trading code's default instead of the winner."""
        return self.raw.get("exported") == "default"

    @property
    def selection_warning(self) -> str | None:
        value = self.raw.get("selection_warning")
        return None if value is None else str(value)

    @property
    def validation_latency_s(self) -> float | None:
        validation = self.raw.get("validation")
        return _number(validation.get("latency_s")) if isinstance(validation, Mapping) else None

    @property
    def number(self) -> int | None:
        """The winning trial, or ``None`` where the attr does not name one."""
        value = self.raw.get("trial_number")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def confirmed_se(self, metric: str) -> float | None:
        """The standard error of the confirmed ``metric`` (older attrs: price MAE's only)."""
        se = _number(self.raw.get("confirmed_se"))
        if se is not None:
            return se
        legacy = _number(self.raw.get("confirmed_price_mae_se"))
        return legacy if metric == "price_mae" else None


@dataclass(frozen=True)
class StudyAttrs:
    """A study's user attrs, typed; each absent key reads as an older study means it."""

    name: str
    attrs: Mapping[str, Any]

    @classmethod
    def of(cls, study: _HasAttrs) -> StudyAttrs:
        """From an ``optuna.Study`` or a ``StudySummary``."""
        return cls(study.study_name, study.user_attrs)

    def _part(self, index: int) -> str:
        return (self.name.split(":") + ["", ""])[index]

    @property
    def made_by_optimise(self) -> bool:
        return UID in self.attrs

    @property
    def uid(self) -> str | None:
        return _text(self.attrs.get(UID)) or None

    @property
    def model(self) -> str:
        """The model (older studies: the name's first part)."""
        return str(self.attrs.get(MODEL) or self._part(0))

    @property
    def symbol(self) -> str:
        """The symbol (older studies: the name's second part)."""
        return str(self.attrs.get(SYMBOL) or self._part(1))

    @property
    def recorded_symbol(self) -> str:
        """The ``symbol`` attr itself; :class:`KeyError` when the study has none."""
        return str(self.attrs[SYMBOL])

    @property
    def recorded_windows(self) -> dict[str, Any]:
        """The ``windows`` attr itself; :class:`KeyError` when the study has none."""
        return dict(self.attrs[WINDOWS])

    @property
    def recorded_metric(self) -> str:
        """The ``metric`` attr itself; :class:`KeyError` when the study has none."""
        return str(self.attrs[METRIC])

    @property
    def metric(self) -> str:
        return str(self.attrs.get(METRIC) or DEFAULT_OBJECTIVE)

    @property
    def seed(self) -> Any:
        """The study seed as recorded (0 before it was; ``open_study`` checks it)."""
        return self.attrs.get(SEED, 0)

    @property
    def sources(self) -> dict[str, str | None] | None:
        return _mapping(self.attrs.get(SOURCES))

    @property
    def windows(self) -> dict[str, Any] | None:
        return _mapping(self.attrs.get(WINDOWS))

    @property
    def task(self) -> Any:
        """The recorded task description (absent: ``None``, the levels task)."""
        return self.attrs.get(TASK)

    @property
    def period(self) -> Any:
        return self.attrs.get(PERIOD)

    @property
    def data_fingerprint(self) -> str | None:
        return _text(self.attrs.get(DATA_FINGERPRINT))

    @property
    def export_path(self) -> Any:
        return self.attrs.get(EXPORT_PATH)

    @property
    def store(self) -> Any:
        return self.attrs.get(STORE)

    @property
    def artifact_store(self) -> Any:
        return self.attrs.get(ARTIFACT_STORE)

    @property
    def confirmation(self) -> Any:
        return self.attrs.get(CONFIRMATION)

    @property
    def test_scores(self) -> list[Any]:
        return list(self.attrs.get(TEST_SCORES) or [])

    @property
    def winner(self) -> Winner | None:
        """The exported winner, ``None`` before the study was exported."""
        raw = self.attrs.get(WINNER)
        return Winner(raw) if isinstance(raw, Mapping) and raw else None


@dataclass(frozen=True)
class TrialAttrs:
    """A trial's user attrs, typed."""

    attrs: Mapping[str, Any]

    @classmethod
    def of(cls, trial: Any) -> TrialAttrs:
        """From a ``FrozenTrial`` (anything with ``user_attrs``)."""
        return cls(trial.user_attrs)

    @property
    def config(self) -> dict[str, Any] | None:
        return _mapping(self.attrs.get(CONFIG))

    @property
    def trial_cost_s(self) -> float | None:
        return _number(self.attrs.get(TRIAL_COST_S))

    @property
    def val_forecasts(self) -> Any:
        """The first pass's validation forecasts (``None`` for trials scored before them)."""
        return self.attrs.get(VAL_FORECASTS)

    def metric(self, name: str) -> float | None:
        """The first pass's value of metric (or ``naive_<metric>``, ``skill``) ``name``."""
        return _number(self.attrs.get(name))

    def naive(self, metric: str) -> float | None:
        return _number(self.attrs.get(naive_key(metric)))

    def metrics(self, names: Sequence[str]) -> dict[str, float]:
        """``{name: value}`` of those of ``names`` the trial recorded as numbers."""
        found = {name: self.metric(name) for name in names}
        return {name: value for name, value in found.items() if value is not None}


# --- what finalisation writes -------------------------------------------------------------


def selection_of(record: Record) -> Selection:
    """The record's ``metadata.selection`` (every record finalised here has one)."""
    if record.metadata.selection is None:
        raise StudyError(f"the record of {record.metadata.study_name} has no metadata.selection")
    return record.metadata.selection


def winner_summary(record: Record) -> dict[str, JSONValue]:
    """What ``status`` shows of the exported winner (a study attr, read without the store)."""
    meta = record.metadata
    summary: dict[str, JSONValue] = {
        "study_name": meta.study_name,
        "trial_number": meta.trial_number,
        "objective": record.objective,
        "validation": record.validation.to_json(),
        "test": record.test.to_json(),
        "confirmed_price_mae_se": selection_of(record).confirmed_price_mae_se,
        "confirmed_se": _confirmed_se(record),
    }
    if meta.warnings:  # impossible forecasts (absent when none: older attrs stay as they are)
        summary["warnings"] = list(meta.warnings)
    from studies.selection import summary_of  # selection imports the context, which reads attrs

    summary.update(summary_of(record))  # --select exported the default
    return summary


def _confirmed_se(record: Record) -> float | None:
    """The Monte-Carlo standard error of the confirmed objective, from the candidates."""
    from studies.selection import exported_default

    metric = record.objective
    if exported_default(record):  # --select: the default's first pass, not a confirmed mean
        return None
    for candidate in selection_of(record).candidates:
        if candidate.get("trial_number") == record.metadata.trial_number:
            value = candidate.get(f"confirmed_{metric}_se")
            return float(value) if isinstance(value, (int, float)) else None
    return None


def test_score(round_key: str, record: Record) -> dict[str, JSONValue]:
    """One row of the ``test_scores`` attr: a finished round's test scores."""
    test = record.test
    return {
        "trial_number": record.metadata.trial_number,
        "round": round_key,
        "price_mae": test.price_mae,
        "return_mae": test.return_mae,
        "latency_s": test.latency_s,
        "naive_price_mae": test.naive_price_mae,
        "skill": test.skill,
        "beats_naive": test.beats_naive,
        "scored_at": record.metadata.created_at,
    }


def set_if_changed(study: Any, key: str, value: Any) -> None:
    """Set study attr ``key`` unless it already holds ``value`` (no write, no race)."""
    if study.user_attrs.get(key) != value:
        study.set_user_attr(key, value)
