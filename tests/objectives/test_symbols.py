"""What a plain ticker is, and a refusal that says which character or the length is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from objectives.bars import MAX_SYMBOL_LENGTH, check_symbol, list_symbols_and_skipped
from objectives.exceptions import DataError


@pytest.mark.parametrize(
    "symbol",
    ["BTCUSD", "AAPL", "ADA-USD", "BRK.B", "ES_F", "U", "1000SHIBUSDT", "X" * MAX_SYMBOL_LENGTH,
     "btcusd"],
)  # fmt: skip
def test_plain_tickers_pass(symbol: str) -> None:
    assert check_symbol(symbol) == symbol


@pytest.mark.parametrize(
    ("symbol", "problem"),
    [
        ("a/b", "'/' at position 2 is not allowed (letters, digits, '.', '_', '-')"),
        ("x y", "' ' at position 2 is not allowed"),
        ("BTC/USD", "'/' at position 4 is not allowed"),
        ("ABé", "'é' at position 3 is not allowed"),
        ("BTC\n", "'\\n' at position 4 is not allowed"),
        ("A:B", "':' at position 2 is not allowed"),
        ("../x", "it starts with '.', not a letter or digit"),
        ("..", "it starts with '.', not a letter or digit"),
        ("-X", "it starts with '-', not a letter or digit"),
        ("X..Y", "'..' is not allowed"),
        ("", "it is empty"),
        ("A" * (MAX_SYMBOL_LENGTH + 1), f"it has 65 characters, more than {MAX_SYMBOL_LENGTH}"),
        ("A" * 200, f"it has 200 characters, more than {MAX_SYMBOL_LENGTH}"),
    ],
)
def test_a_refusal_names_the_character_or_the_length(symbol: str, problem: str) -> None:
    with pytest.raises(DataError) as caught:
        check_symbol(symbol)
    message = str(caught.value)
    assert message.startswith("symbol ") and "is not a plain ticker: " in message
    assert message.endswith(problem) or problem in message, message
    assert "\n" not in message
    assert len(message) < 160  # a 200-letter symbol is shortened, the line stays readable


def test_the_data_folder_skips_what_check_symbol_refuses(tmp_path: Path) -> None:
    for name in ("AAPL", "btcusd", "A" * 65, "x y", "A" * 64):
        (tmp_path / f"{name}.csv").write_text("timestamp,open,high,low,close\n")
    symbols, skipped = list_symbols_and_skipped(tmp_path)
    assert symbols == sorted(["AAPL", "btcusd", "A" * 64])
    assert skipped == sorted([f"{'A' * 65}.csv", "x y.csv"])
