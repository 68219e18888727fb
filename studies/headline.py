"""The winner's headline as study attrs, for optuna-dashboard's "Study User Attributes" table:
the confirmed validation value, naive's and the test's, with units, to 4 significant digits.

:func:`reserve` writes them first when a study is created, so that the dashboard (which lists
a study's attrs in the order they were first written, five to a page) shows them on its first
page once finalisation fills them in; a study created before them has them last.
"""

from __future__ import annotations

import optuna

from objectives.units import scaled, words
from storage.record import Record

KEYS = ("val confirmed", "val naive", "test (once)", "test price MAE")
PENDING = "not finalised yet"


def reserve(study: optuna.Study) -> None:
    """Write :data:`KEYS` as :data:`PENDING` (at creation, before every other attr)."""
    for key in KEYS:
        study.set_user_attr(key, PENDING)


def headline(record: Record) -> dict[str, str]:
    """:data:`KEYS` of a finalised record: what the dashboard shows, short enough for its
    table (the trial, the seed sets and the rest are in the ``winner`` attr and the note)."""
    metric, meta = record.objective, record.metadata
    val, test = record.validation, record.test
    mark, unit = words(metric)

    def shown(value: object, digits: int = 4) -> str:
        number = value if isinstance(value, (int, float)) else None
        return "-" if number is None else scaled(metric, number, digits) + mark

    first = se = None
    selection = meta.selection
    for candidate in selection.candidates if selection else ():
        if candidate.get("trial_number") == meta.trial_number:
            first = candidate.get(f"first_pass_{metric}")
            se = candidate.get(f"confirmed_{metric}_se")
    spread = "" if se is None else f" ± {shown(se, 2)}"
    naive_price = test.naive_price_mae
    return {
        "val confirmed": f"{metric} {shown(val.metric(metric))}{spread}{unit} "
        f"(first pass {shown(first)})",
        "val naive": f"{metric} {shown(val.naive(metric))}{unit}",
        "test (once)": f"{metric} {shown(test.metric(metric))} (naive "
        f"{shown(test.naive(metric))}){unit}",
        "test price MAE": f"{test.price_mae:.4g} (naive "
        f"{'-' if naive_price is None else format(naive_price, '.4g')}) in price units",
    }
