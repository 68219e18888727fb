"""The winner's headline as study attrs, for optuna-dashboard's "Study User Attributes" table:
the confirmed validation value, naive's and the test's, with units, to 4 significant digits.

:func:`reserve` writes them first when a study is created, so that the dashboard (which lists
a study's attrs in the order they were first written, five to a page) shows them on its first
page once finalisation fills them in; a study created before them has them last.
"""

from __future__ import annotations

import optuna

from objectives.units import scaled, with_unit
from storage.record import Record

KEYS = ("val confirmed", "val naive", "test (once)")
PENDING = "not finalised yet"


def reserve(study: optuna.Study) -> None:
    """Write :data:`KEYS` as :data:`PENDING` (at creation, before every other attr)."""
    for key in KEYS:
        study.set_user_attr(key, PENDING)


def headline(record: Record) -> dict[str, str]:
    """:data:`KEYS` of a finalised record: what the dashboard shows."""
    metric, meta = record.objective, record.metadata
    val, test = record.validation, record.test
    selection = meta.selection
    first = se = None
    for candidate in selection.candidates if selection else ():
        if candidate.get("trial_number") == meta.trial_number:
            first = candidate.get(f"first_pass_{metric}")
            se = candidate.get(f"confirmed_{metric}_se")
    spread = f" ± {scaled(metric, se, 2)}" if isinstance(se, (int, float)) else ""
    draws = f"mean of {len(selection.seeds)} fresh seed sets, " if selection else ""
    shown_first = scaled(metric, first) if isinstance(first, (int, float)) else "-"
    price = (
        f"; price MAE {test.price_mae:.4g} (naive "
        f"{'-' if test.naive_price_mae is None else format(test.naive_price_mae, '.4g')}) "
        "in price units"
    )
    return {
        "val confirmed": f"{metric} {with_unit(metric, val.metric(metric))}{spread} "
        f"(trial {meta.trial_number}, {draws}first pass {shown_first})",
        "val naive": f"{metric} {with_unit(metric, val.naive(metric))}",
        "test (once)": f"{metric} {with_unit(metric, test.metric(metric))} (naive "
        f"{with_unit(metric, test.naive(metric))}){price}",
    }
