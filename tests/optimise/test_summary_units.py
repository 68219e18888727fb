"""The table ``launch`` and ``export`` end with names each value's unit:
the objective's first-pass and confirmed values side by side in its units (returns in %),
the test's price figures apart in the symbol's price units."""

from __future__ import annotations

from pathlib import Path

from optimise import summary
from studies.finalise import Finalised
from tests.optimise.test_warning_units import winner


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
