"""The trading code's selection keys in ``best/`` records: ``<model>_pct_return_mae`` and
``improvement_pct`` mean what its model-selection script writes.

Transcribed (as a formula, not its code) from lee101/stock-prediction
``update_best_configs_by_return_mae.py`` (commit c059b75e, the version that wrote the
``hyperparams/best/`` records at 3d98a753): for each model with a record, ``mae`` is its
``pct_return_mae``; the chosen model has the lowest; ``improvement_pct`` is
``(second - best) / second * 100`` with ``second`` the second-lowest of all the values, 0.0 with
one model or ``second <= 0``; ``kronos_pct_return_mae``, ``toto_pct_return_mae`` and
``chronos2_pct_return_mae`` are those models' values (``null`` for a model without a record).
"""

from __future__ import annotations

import math

import pytest

from objectives.registry import flat_selection_models
from storage.best import Entry, choose
from storage.record import Record
from tests.storage.test_foreign_records import ours

#: the trading code's three models, in the order its selection writes their flat keys
FLAT_MODELS = ("kronos", "toto", "chronos2")


def trading_selection(mae: dict[str, float]) -> tuple[str, dict[str, float | None]]:
    """The trading code's choice and its selection keys, from each model's pct_return_mae."""
    chosen = min(mae, key=lambda model: mae[model])
    ordered = sorted(mae.values())
    second = ordered[1] if len(ordered) > 1 else None
    improvement = (second - mae[chosen]) / second * 100 if second and second > 0 else 0.0
    keys: dict[str, float | None] = {f"{m}_pct_return_mae": mae.get(m) for m in FLAT_MODELS}
    keys["improvement_pct"] = improvement
    return chosen, keys


def record(model: str, pct: float, objective: str = "return_mae") -> Record:
    """A record of ours whose validation ``pct_return_mae`` (= ``return_mae``) is ``pct``."""
    raw = ours(model, "AAPL", pct * 100).to_json()
    raw["metadata"]["objective"] = objective  # type: ignore[index]
    return Record.from_json(raw)


def written(chosen: Record) -> dict[str, float | None]:
    meta = chosen.metadata.to_json()
    return {k: meta.get(k) for k in (*(f"{m}_pct_return_mae" for m in FLAT_MODELS),
                                     "improvement_pct")}  # fmt: skip


#: AAPL's real values in the trading code's best/AAPL.json at 3d98a753 (chronos2 chosen, toto
#: runner-up, improvement_pct 10.676434731754384), and smaller cases
CASES = [
    {
        "kronos": 0.03402690832893461,
        "toto": 0.02066276378336577,
        "chronos2": 0.01845671729425814,
    },  # fmt: skip
    {"kronos": 0.02, "toto": 0.03},
    {"toto": 0.04},
    {"kronos": 0.0, "toto": 0.0},
]


def test_the_registry_names_the_trading_codes_flat_keys_in_its_order() -> None:
    assert flat_selection_models() == FLAT_MODELS


@pytest.mark.parametrize("mae", CASES)
def test_best_carries_the_trading_codes_selection_keys(mae: dict[str, float]) -> None:
    entries = [Entry(m, record=record(m, v)) for m, v in mae.items()]
    chosen = choose(entries, "hyperparams", flat_selection_models())
    assert chosen is not None
    model, expected = trading_selection(mae)
    assert chosen.model == model  # return_mae studies: the same choice as the trading code's
    got = written(chosen)
    # absent where the trading code writes null (this project never writes null)
    assert got == expected
    assert chosen.metadata.candidate_pct_return_mae == mae
    assert Record.from_json(chosen.to_json()) == chosen


def test_the_real_aapl_improvement() -> None:
    entries = [Entry(m, record=record(m, v)) for m, v in CASES[0].items()]
    got = written(choose(entries, "s", flat_selection_models()))
    assert math.isclose(got["improvement_pct"] or 0.0, 10.676434731754384, rel_tol=1e-12)


def test_a_choice_on_another_objective_can_show_a_negative_improvement() -> None:
    """Chosen on validation price MAE, the chosen model's pct_return_mae may not be the
    lowest: the same formula against the runner-up then gives a negative percentage."""
    entries = [Entry("kronos", record=record("kronos", 0.02, "price_mae")),
               Entry("toto", record=record("toto", 0.03, "price_mae"))]  # fmt: skip
    raw = entries[1].record.to_json()  # type: ignore[union-attr]
    raw["validation"]["price_mae"] = 0.5  # type: ignore[index]  # toto wins on price MAE
    entries[1] = Entry("toto", record=Record.from_json(raw))
    chosen = choose(entries, "s")
    assert chosen is not None and chosen.model == "toto"
    assert chosen.metadata.improvement_pct == pytest.approx((0.02 - 0.03) / 0.02 * 100)
