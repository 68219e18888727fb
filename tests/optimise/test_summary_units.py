"""The table ``launch`` and ``export`` end with, and their warnings, name each value's unit:
the objective's first-pass and confirmed values side by side in its units (returns in %),
the test's price figures apart in the symbol's price units."""

from __future__ import annotations

from pathlib import Path

from optimise import summary
from optimise.commands import edge_warning, naive_warning
from storage.record import Record
from studies.finalise import Finalised


def winner(metric: str = "return_mae") -> Record:
    """A made-up record: trial 3 won, first pass 0.0206, confirmed 0.0200 ± 0.00011."""
    candidate = {"trial_number": 3, "config": {},
                 f"first_pass_{metric}": 0.0206341, f"confirmed_{metric}": 0.0199968,
                 f"confirmed_{metric}_se": 0.00011}  # fmt: skip
    return Record.from_json({
        "symbol": "ADA", "model": "toto", "config": {"name": "toto_x"},
        "validation": {"price_mae": 0.0163, "return_mae": 0.0199968, "latency_s": 0.01,
                       "naive_price_mae": 0.0162, "naive_return_mae": 0.0200834,
                       "beats_naive": True},
        "test": {"price_mae": 0.0108094, "return_mae": 0.0145312, "latency_s": 0.01,
                 "naive_price_mae": 0.00933, "naive_return_mae": 0.0125464, "skill": -0.158,
                 "vs_naive": {"mae_ratio": 1.158, "dm_stat": 1.9, "p_value": 0.0618,
                              "method": "DM-HLN"}},
        "windows": {"val_window": 20, "test_window": 20, "forecast_horizon": 1},
        "metadata": {
            "study_name": "toto:ADA:v20-t20-h1:trading", "trial_number": 3,
            "objective": metric, "created_at": "2026-12-07T00:00:00+00:00",
            "selection": {"method": "confirm", "first_pass_price_mae": 0.0163,
                          "confirmed_price_mae": 0.0163, "confirmed_price_mae_se": 0.0001,
                          "first_pass_return_mae": 0.0206341,
                          "confirmed_return_mae": 0.0199968,
                          "confirmed_return_mae_se": 0.00011, "search_seed": 0,
                          "seeds": [1, 2], "candidates": [candidate]},
        },
    })  # fmt: skip


def test_the_summary_puts_first_pass_and_confirmed_side_by_side_in_the_objectives_unit() -> None:
    done = Finalised(winner(), Path("store/toto/ADA.json"), True, [])
    row = summary.row("toto:ADA:v20-t20-h1:trading", "10/10", done)
    assert row == ["toto:ADA:v20-t20-h1:trading", "10/10", "return_mae %", "2.063",
                   "2.000 ± 0.011", "2.008", "1.453", "1.255", "0.01081", "0.00933", "-0.158",
                   "store/toto/ADA.json"]  # fmt: skip
    lines = summary.lines([done.record], summary.HEADER, [row])
    assert lines[0] == "return_mae (in % of the price; lower is better):"
    assert lines[1].startswith("test price: MAE") and "the symbol's price units" in lines[1]
    groups, header = lines[2], lines[3].split()
    assert "validation" in groups and "test price" in groups
    assert header[2:5] == ["objective", "first", "confirmed"]


def test_a_sweeps_row_keeps_symbol_study_trials_winner_and_status_where_they_were() -> None:
    done = Finalised(winner(), Path("store/toto/ADA.json"), True, [], live=False)
    row = summary.sweep_row("ADA", "toto:ADA:v20-t20-h1:trading", "10/10", done, "ok")
    assert row[:4] == ["ADA", "toto:ADA:v20-t20-h1:trading", "10/10", "trial 3"]
    assert row[-2:] == ["store/toto/ADA.json (not live)", "ok"]
    assert len(row) == len(summary.SWEEP_HEADER)
    failed = summary.sweep_row("BAD", None, "-", None, "failed: x")
    assert failed[:2] == ["BAD", "-"] and failed[-1] == "failed: x"


def test_the_warnings_name_the_unit_or_say_a_ratio_has_none() -> None:
    record = winner()
    line = naive_warning("s", 3, "return_mae", record.validation)
    assert "(return_mae 2.000% of the price vs naive 2.008% of the price)" in line
    price = naive_warning("s", 3, "price_mae", record.validation)
    assert "(price_mae 0.01630 (price units) vs naive 0.01620 (price units))" in price
    edge = edge_warning("s", 3, "return_mae", record.test)
    assert edge is not None and "mean return_mae 1.158 times naive's, a ratio" in edge
