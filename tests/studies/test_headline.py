"""The headline attrs the dashboard shows: the confirmed value, naive's and the test's, to 4
significant digits with units (a made-up record)."""

from __future__ import annotations

from studies.headline import headline
from tests.optimise.test_warning_units import winner


def test_the_headline_rounds_and_names_units() -> None:
    assert headline(winner()) == {
        "val confirmed": "return_mae 2.000% ± 0.011% of the price (first pass 2.063%)",
        "val naive": "return_mae 2.008% of the price",
        "test (once)": "return_mae 1.453% (naive 1.255%) of the price",
        "test price MAE": "0.01081 (naive 0.00933) in price units",
    }
    price = headline(winner("price_mae"))
    assert price["val naive"] == "price_mae 0.01620 in price units"
    assert price["val confirmed"] == (
        "price_mae 0.01630 ± 0.00011 in price units (first pass 0.02063)"
    )
