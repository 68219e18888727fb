"""The leaderboard: each study's N best distinct settings (``export --top N``, ``status --top N``).

A row is one distinct configuration (trials TPE proposed again with the same settings are one
row; ``duplicates`` counts them), with every metric the trial recorded on the search's seed set,
the live latency where it is known (the exported winner's), the trial's cost, its trial number
and its config in the trading code's keys, made by the same ``space.from_params(params)
.to_config()`` the exported record's ``config`` is made by (the record adds only ``name``).

Ranking, under the study's direction (``direction_accuracy`` is maximised):

* the configurations the last finalisation confirmed (study attr ``confirmation``: the study's
  best few re-scored on fresh seed sets) come first, by their confirmed mean, ties by the first
  pass: rank 1 is the exported winner (``ranked_by: confirmed``);
* then every other configuration by its first-pass value (``ranked_by: first_pass``).

A confirmed mean is not optimistic and a first pass is (its seed set flattered the search's
best), so the two are never sorted together. A study that is not finalised has only
first-pass rows. Trials that finished after the last confirmation and beat one of its
candidates on the first pass are counted (:attr:`Board.unconfirmed_better`): ``optimise
export`` (without ``--top``) confirms the new candidate set.

Reading is all this does: nothing is confirmed, scored or written to the database or store.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

import optuna
from optuna.trial import FrozenTrial, TrialState

from errors import OptimiseError
from objectives.metrics import METRIC_NAMES
from objectives.registry import find
from objectives.units import UNITS
from optimise.tables import format_table
from storage.listing import all_studies
from storage.record import JSONValue
from studies.attrs import StudyAttrs, TrialAttrs, naive_key
from studies.exceptions import StudyError
from studies.objective import stored_key

FORMATS = ("table", "csv", "json")
CONFIRMED = "confirmed"
FIRST_PASS = "first_pass"

#: the trial attrs that are metrics, in the order they are shown: each registered metric, its
#: naive value, the price skill (what :meth:`objectives.metrics.Metrics.as_dict` records)
METRIC_ATTRS = (*METRIC_NAMES, *(naive_key(m) for m in METRIC_NAMES), "skill")

ConfigOf = Callable[[FrozenTrial], dict[str, JSONValue]]


@dataclass(frozen=True)
class Row:
    """One distinct configuration of a study, ranked."""

    rank: int
    trial: int  # the trial that stands for the configuration (the confirmed one, else the first)
    ranked_by: str  # CONFIRMED or FIRST_PASS
    value: float  # what it is ranked by: the confirmed mean, else the first pass
    first_pass: float  # the trial's value: the objective on the search's seed set
    confirmed: float | None  # the confirmed mean of the objective on fresh seed sets
    confirmed_se: float | None  # its Monte-Carlo standard error
    winner: bool  # the exported winner of the last finalisation
    metrics: dict[str, float]  # every metric the trial recorded (first pass), METRIC_ATTRS order
    latency_s: float | None  # live latency of forecasting the validation window (winner only)
    trial_cost_s: float | None  # what the trial's (cached) scoring cost
    duplicates: int  # other complete trials with exactly these settings
    config: dict[str, JSONValue]  # the trading code's keys


@dataclass(frozen=True)
class Board:
    """One study's leaderboard."""

    study: str
    model: str
    symbol: str
    objective: str
    direction: str  # "minimize" or "maximize"
    complete: int  # complete trials
    distinct: int  # distinct configurations among them
    rows: tuple[Row, ...]
    finalised: bool  # the study has a published confirmation
    unconfirmed_better: int  # unconfirmed configurations better on first pass than a candidate


# ---------------------------------------------------------------------------------------------
# Pure: trials -> rows


def confirmed_values(confirmation: object, metric: str) -> dict[int, tuple[float, float | None]]:
    """``{trial number: (confirmed mean, its standard error)}`` from a study's
    ``confirmation`` attr (the exported record's ``metadata.selection``); empty if none."""
    if not isinstance(confirmation, Mapping):
        return {}
    out: dict[int, tuple[float, float | None]] = {}
    for candidate in confirmation.get("candidates") or ():
        if not isinstance(candidate, Mapping):
            continue
        number, mean = candidate.get("trial_number"), candidate.get(f"confirmed_{metric}")
        if isinstance(number, int) and _is_number(mean):
            se = candidate.get(f"confirmed_{metric}_se")
            out[number] = (float(mean), float(se) if _is_number(se) else None)
    return out


def rank(
    trials: Iterable[FrozenTrial],
    *,
    maximize: bool,
    top: int,
    confirmed: Mapping[int, tuple[float, float | None]] | None = None,
    winner: int | None = None,
    winner_latency_s: float | None = None,
    config_of: ConfigOf | None = None,
) -> tuple[list[Row], int, int]:
    """The ``top`` best distinct configurations of the complete ``trials``, the number of
    distinct configurations, and how many unconfirmed ones beat a confirmed candidate on the
    first pass.

    ``confirmed`` maps trial numbers to their confirmed (mean, SE); ``winner`` is the exported
    trial, whose ``winner_latency_s`` is the only live latency known. ``config_of`` gives a
    trial's config (default: its ``config`` attr, else its params)."""
    if top < 1:
        raise ValueError("top must be at least 1")
    confirmed = confirmed or {}
    config_of = config_of or _stored_config
    sign = -1.0 if maximize else 1.0
    groups: dict[str, list[FrozenTrial]] = {}
    for trial in sorted(_complete(trials), key=lambda t: t.number):
        key = stored_key(trial) or json.dumps(trial.params, sort_keys=True)
        groups.setdefault(key, []).append(trial)
    entries = []
    for group in groups.values():
        stand = next((t for t in group if t.number in confirmed), group[0])
        entries.append((stand, len(group) - 1, confirmed.get(stand.number)))
    first_tier = sorted(
        ((stand, extra, conf) for stand, extra, conf in entries if conf is not None),
        key=lambda e: (sign * e[2][0], sign * _value(e[0]), e[0].number),
    )
    second_tier = sorted(
        (e for e in entries if e[2] is None), key=lambda e: (sign * _value(e[0]), e[0].number)
    )
    worst_candidate = max((sign * _value(e[0]) for e in first_tier), default=None)
    better = (
        0
        if worst_candidate is None
        else sum(1 for e in second_tier if sign * _value(e[0]) < worst_candidate)
    )
    rows = []
    for position, (trial, duplicates, conf) in enumerate([*first_tier, *second_tier][:top], 1):
        attrs = TrialAttrs.of(trial)
        rows.append(
            Row(
                rank=position,
                trial=trial.number,
                ranked_by=CONFIRMED if conf is not None else FIRST_PASS,
                value=conf[0] if conf is not None else _value(trial),
                first_pass=_value(trial),
                confirmed=conf[0] if conf is not None else None,
                confirmed_se=conf[1] if conf is not None else None,
                winner=trial.number == winner,
                metrics=attrs.metrics(METRIC_ATTRS),
                latency_s=winner_latency_s if trial.number == winner else None,
                trial_cost_s=attrs.trial_cost_s,
                duplicates=duplicates,
                config=config_of(trial),
            )
        )
    return rows, len(groups), better


def trading_config(model: str) -> ConfigOf:
    """A trial's config as the exported record writes it: ``space.from_params(trial.params)
    .to_config()`` of the model's search space (without the record's ``name``); the trial's
    stored ``config`` attr if the model is unknown or the params no longer parse."""
    found = find(model)
    space = found.space() if found is not None else None

    def config_of(trial: FrozenTrial) -> dict[str, JSONValue]:
        if space is not None:
            try:
                return dict(space.from_params(trial.params).to_config())
            except (OptimiseError, KeyError, TypeError, ValueError):
                pass
        return _stored_config(trial)

    return config_of


def board(study: optuna.Study, top: int) -> Board:
    """The leaderboard of one study (read only)."""
    attrs = StudyAttrs.of(study)
    metric = attrs.metric
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    name = study.study_name
    model = attrs.model
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    winner = attrs.winner
    confirmed = confirmed_values(attrs.confirmation, metric)
    rows, distinct, better = rank(
        trials,
        maximize=maximize,
        top=top,
        confirmed=confirmed,
        winner=None if winner is None else winner.number,
        winner_latency_s=None if winner is None else winner.validation_latency_s,
        config_of=trading_config(model),
    )
    return Board(
        study=name,
        model=model,
        symbol=attrs.symbol,
        objective=metric,
        direction="maximize" if maximize else "minimize",
        complete=len(trials),
        distinct=distinct,
        rows=tuple(rows),
        finalised=bool(confirmed),
        unconfirmed_better=better,
    )


def notes(boards: Sequence[Board]) -> list[str]:
    """One line per study whose ranking is not (wholly) confirmed, for stderr."""
    out = []
    for b in boards:
        if not b.complete:
            out.append(f"note: {b.study} has no complete trial yet")
        elif not b.finalised:
            out.append(
                f"note: {b.study} is not finalised: ranked by the first pass; `optimise export` "
                "(without --top) confirms and exports it"
            )
        elif b.unconfirmed_better:
            out.append(
                f"note: {b.study}: {b.unconfirmed_better} unconfirmed setting(s) finished after "
                "the last confirmation beat one of its candidates on the first pass; "
                "`optimise export` (without --top) confirms the new candidates"
            )
    return out


# ---------------------------------------------------------------------------------------------
# Reading studies


def study_names(
    storage: Any, *, model: str | None = None, symbols: Sequence[str] | None = None
) -> list[str]:
    """The studies made by optimise in the database (those with a ``study_uid``), of ``model``
    and ``symbols`` if given, by name."""
    wanted = set(symbols or ())
    names = []
    for summary in all_studies(storage):
        attrs = StudyAttrs.of(summary)
        if not attrs.made_by_optimise or len(summary.directions) != 1:
            continue
        if model is not None and attrs.model != model:
            continue
        if wanted and attrs.symbol not in wanted:
            continue
        names.append(summary.study_name)
    return sorted(names)


def load_boards(storage: Any, names: Sequence[str], top: int) -> list[Board]:
    """The leaderboards of the named studies; a missing one is a one-line :class:`StudyError`."""
    boards = []
    for name in names:
        try:
            study = optuna.load_study(study_name=name, storage=storage)
        except KeyError:
            raise StudyError(f"no study {name}; run `optimise launch` first") from None
        if len(study.directions) != 1:
            raise StudyError(f"study {name} has several objectives; it was not made by optimise")
        boards.append(board(study, top))
    return boards


# ---------------------------------------------------------------------------------------------
# Formatters


def render(boards: Sequence[Board], fmt: str) -> str:
    """The boards as ``table`` (aligned text, one block per study), ``csv`` or ``json``."""
    formatters = {"table": format_text, "csv": format_csv, "json": format_json}
    if fmt not in formatters:
        raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    return formatters[fmt](boards)


def _metric_columns(rows: Iterable[Row]) -> list[str]:
    present = {k for r in rows for k in r.metrics}
    return [k for k in METRIC_ATTRS if k in present]


def format_text(boards: Sequence[Board]) -> str:
    """Per study: a title line, then an aligned table (metrics are first-pass values)."""
    blocks = []
    for b in boards:
        title = (
            f"{b.study}: {b.objective} ({b.direction}; {UNITS.get(b.objective, 'no unit known')}), "
            f"{b.complete} complete trials, "
            f"{b.distinct} distinct settings, "
            + ("confirmed first" if b.finalised else "not finalised: first pass only")
        )
        if not b.rows:
            blocks.append(title + "\n(no complete trial yet)\n")
            continue
        shown = [k for k in _metric_columns(b.rows) if not k.startswith("naive_")]
        naive = {k: v for k, v in b.rows[0].metrics.items() if k.startswith("naive_")}
        if naive:  # the naive forecast's values do not depend on the settings
            title += "; naive: " + ", ".join(f"{k[6:]} {_num(v)}" for k, v in naive.items())
        header = ["rank", "trial", "ranked_by", "value", "± se", *shown, "latency_s",
                  "cost_s", "dups", "config"]  # fmt: skip
        cells = [
            [
                f"{r.rank}{'*' if r.winner else ''}",
                str(r.trial),
                r.ranked_by,
                _num(r.value),
                _num(r.confirmed_se, ".2g"),
                *(_num(r.metrics.get(k)) for k in shown),
                _num(r.latency_s, ".4g"),
                _num(r.trial_cost_s, ".3g"),
                str(r.duplicates),
                json.dumps(r.config),
            ]
            for r in b.rows
        ]
        lines = [line.rstrip() for line in format_table(header, cells)]
        blocks.append("\n".join([title, *lines]) + "\n")
    legend = (
        "value: the confirmed mean (fresh seed sets) where ranked_by is confirmed, else the "
        "first pass; metric columns: first pass; * the exported winner; dups: other trials "
        "with the same settings\n" + UNITS_LEGEND
    )
    return "\n".join(blocks) + ("\n" + legend if any(b.rows for b in boards) else "")


#: the table's last line: what each column's numbers are in
UNITS_LEGEND = (
    "units: price_mae in the symbol's price units; return_mae, calibrated_return_mae and crps "
    "fractions of the price (0.01 = 1%); direction_accuracy a share of the targets (0.5 = 50%); "
    "latency_s and cost_s seconds\n"
)

#: the CSV's columns before the metrics, and after them
CSV_HEAD = ["study", "model", "symbol", "objective", "direction", "rank", "trial", "ranked_by",
            "value", "first_pass", "confirmed", "confirmed_se", "winner"]  # fmt: skip
CSV_TAIL = ["latency_s", "trial_cost_s", "duplicates", "config"]


def format_csv(boards: Sequence[Board]) -> str:
    """One CSV row per configuration of every study (``config`` as JSON text; empty cells for
    values not known)."""
    metrics = _metric_columns(r for b in boards for r in b.rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*CSV_HEAD, *metrics, *CSV_TAIL])
    for b in boards:
        for r in b.rows:
            writer.writerow(
                [
                    b.study, b.model, b.symbol, b.objective, b.direction, r.rank, r.trial,
                    r.ranked_by, _csv(r.value), _csv(r.first_pass), _csv(r.confirmed),
                    _csv(r.confirmed_se), "true" if r.winner else "false",
                    *(_csv(r.metrics.get(k)) for k in metrics),
                    _csv(r.latency_s), _csv(r.trial_cost_s), r.duplicates,
                    json.dumps(r.config),
                ]
            )  # fmt: skip
    return buffer.getvalue()


def format_json(boards: Sequence[Board]) -> str:
    """``{"studies": [{study, model, symbol, objective, direction, complete_trials,
    distinct_settings, finalised, rows: [...]}]}``; values not known (or not finite) are
    ``null``."""
    studies = [
        {
            "study": b.study,
            "model": b.model,
            "symbol": b.symbol,
            "objective": b.objective,
            "direction": b.direction,
            "complete_trials": b.complete,
            "distinct_settings": b.distinct,
            "finalised": b.finalised,
            "rows": [
                {
                    "rank": r.rank,
                    "trial": r.trial,
                    "ranked_by": r.ranked_by,
                    "value": _finite(r.value),
                    "first_pass": _finite(r.first_pass),
                    "confirmed": _finite(r.confirmed),
                    "confirmed_se": _finite(r.confirmed_se),
                    "winner": r.winner,
                    "metrics": {k: _finite(v) for k, v in r.metrics.items()},
                    "latency_s": _finite(r.latency_s),
                    "trial_cost_s": _finite(r.trial_cost_s),
                    "duplicates": r.duplicates,
                    "config": r.config,
                }
                for r in b.rows
            ],
        }
        for b in boards
    ]
    return json.dumps({"studies": studies}, indent=2, allow_nan=False) + "\n"


# ---------------------------------------------------------------------------------------------


def _complete(trials: Iterable[FrozenTrial]) -> list[FrozenTrial]:
    return [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]


def _value(trial: FrozenTrial) -> float:
    return float(trial.value) if trial.value is not None else math.nan


def _stored_config(trial: FrozenTrial) -> dict[str, JSONValue]:
    stored = TrialAttrs.of(trial).config
    return stored if stored is not None else dict(trial.params)


def _is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _num(value: float | None, spec: str = ".6g") -> str:
    return "-" if value is None or not math.isfinite(value) else format(value, spec)


def _csv(value: float | None) -> str:
    return "" if value is None or not math.isfinite(value) else repr(float(value))
