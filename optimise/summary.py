"""The table ``launch`` and ``export`` end with: per study, the objective's first-pass and
confirmed validation values side by side (in the units ``status`` shows: returns in % of the
price), its naive and test values, and apart from them the test's price MAE in the symbol's
price units; a heading above names each objective's unit and direction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from objectives.metrics import METRICS
from objectives.units import SHOWN, heading, scaled
from optimise.status import grouped_table
from storage.record import Record
from studies.finalise import Finalised
from studies.selection import exported_default

#: the columns, and the groups above them (name, first column, last column)
HEADER = ["study", "trials", "objective", "first", "confirmed", "naive", "once", "naive",
          "price MAE", "naive", "skill", "export"]  # fmt: skip
GROUPS = (("validation", 3, 5), ("test", 6, 7), ("test price", 8, 10))
#: a sweep's table: each symbol and its winner around the same columns, and its status
SWEEP_HEADER = ["symbol", *HEADER[:2], "winner", *HEADER[2:], "status"]
SWEEP_GROUPS = tuple((name, first + 2, last + 2) for name, first, last in GROUPS)
PRICE_NOTE = (
    "test price: MAE (mean over the task's columns) and naive in the symbol's price units, "
    "skill 1 - MAE/naive"
)


def row(name: str, trials: str, done: Finalised | None) -> list[str]:
    """A study's row of :data:`HEADER`."""
    if done is None:
        return [name, trials, *["-"] * (len(HEADER) - 2)]
    record = done.record
    validation, test, metric = record.validation, record.test, record.objective
    first, se = _winner_candidate(record)
    if exported_default(record):  # --select: the default's one scoring, no confirmed mean
        first, se = validation.metric(metric), None
    confirmed = scaled(metric, validation.metric(metric))
    if se is not None:
        confirmed += f" ± {scaled(metric, se, 2)}"
    return [
        name,
        trials,
        objective_cell(metric),
        scaled(metric, first),
        confirmed,
        scaled(metric, validation.naive(metric)),
        scaled(metric, test.metric(metric)),
        scaled(metric, test.naive(metric)),
        f"{test.price_mae:.4g}",
        "-" if test.naive_price_mae is None else f"{test.naive_price_mae:.4g}",
        "-" if test.skill is None else f"{test.skill:+.3f}",
        str(done.path) if done.live else f"{done.path} (not live)",
    ]


def sweep_row(symbol: str, study: str | None, trials: str, done: Finalised | None,
              status: str) -> list[str]:  # fmt: skip
    """A symbol's row of :data:`SWEEP_HEADER`: its winner and status around :func:`row`."""
    cells = row(study or (symbol if done else "-"), trials, done)
    cells.insert(2, "-" if done is None else f"trial {done.record.metadata.trial_number}")
    return [symbol, *cells, status]


def objective_cell(metric: str) -> str:
    """``return_mae %``: the objective and the unit its values are shown in."""
    return f"{metric} {'%' if SHOWN.get(metric, (1.0, ''))[0] == 100.0 else '(price)'}"


def lines(records: Iterable[Record], header: list[str], rows: Sequence[list[str]],
          groups: Sequence[tuple[str, int, int]] = GROUPS) -> list[str]:  # fmt: skip
    """The headings (each objective's unit and direction, the price columns'), then the table."""
    metrics = dict.fromkeys(r.objective for r in records)
    above = [
        heading(m, METRICS[m].direction if m in METRICS else "minimize") + ":" for m in metrics
    ]
    table = [line.rstrip() for line in grouped_table(header, list(rows), groups)]
    return [*above, PRICE_NOTE, *table]


def _winner_candidate(record: Record) -> tuple[float | None, float | None]:
    """The winner's first-pass objective value and the standard error of its confirmed one."""
    metric, selection = record.objective, record.metadata.selection
    for candidate in selection.candidates if selection else ():
        if candidate.get("trial_number") == record.metadata.trial_number:
            first = candidate.get(f"first_pass_{metric}")
            se = candidate.get(f"confirmed_{metric}_se")
            return (
                float(first) if isinstance(first, (int, float)) else None,
                float(se) if isinstance(se, (int, float)) else None,
            )
    return None, None
