"""The warnings of ``launch``, ``export`` and ``status`` give each value with its unit, and say
a loss ratio has none (a made-up record, shared with the summary and headline tests)."""

from __future__ import annotations

from optimise.commands import edge_warning, naive_warning
from storage.record import Record


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


def test_the_warnings_name_the_unit_or_say_a_ratio_has_none() -> None:
    record = winner()
    line = naive_warning("s", 3, "return_mae", record.validation)
    assert "(return_mae 2.000% of the price vs naive 2.008% of the price)" in line
    price = naive_warning("s", 3, "price_mae", record.validation)
    assert "(price_mae 0.01630 (price units) vs naive 0.01620 (price units))" in price
    edge = edge_warning("s", 3, "return_mae", record.test)
    assert edge is not None and "mean return_mae 1.158 times naive's, a ratio" in edge
