"""Warm starts come from other symbols' studies of the same model in the same storage only."""

from __future__ import annotations

from pathlib import Path

import optuna

from tests.conftest import run_cli


def launch(data: Path, symbol: str, n: int, storage: str, *extra: str) -> int:
    return run_cli(
        "launch", "--model", "fake", "--symbols", symbol, "--data-dir", data, "--n-trials", n,
        "--storage", storage, "--no-progress", "--task", "levels", *extra,
    )  # fmt: skip


def sources(storage: str, name: str) -> list[str]:
    study = optuna.load_study(study_name=name, storage=storage)
    return [t.user_attrs.get("source", "") for t in study.trials]


def test_a_new_study_first_tries_other_symbols_winners(workdir: Path, sample_data: Path) -> None:
    here, elsewhere = "sqlite:///studies.db", "sqlite:///other.db"
    assert launch(sample_data, "IBM", 6, elsewhere) == 0  # another storage: never used
    assert launch(sample_data, "AAPL", 6, here) == 0
    aapl = optuna.load_study(study_name="fake:AAPL:v20-t20-h1", storage=here)
    winner = aapl.trials[aapl.user_attrs["winner"]["trial_number"]]
    assert launch(sample_data, "MSFT", 3, here) == 0
    msft = optuna.load_study(study_name="fake:MSFT:v20-t20-h1", storage=here)
    warm = [t for t in msft.trials if t.user_attrs.get("source", "").startswith("warm start")]
    assert len(warm) == 1
    assert warm[0].params == winner.params
    assert "fake:AAPL:v20-t20-h1" in warm[0].user_attrs["source"]
    assert not any("IBM" in s for s in sources(here, "fake:MSFT:v20-t20-h1"))
    assert launch(sample_data, "GOOG", 3, here, "--no-warm-start") == 0
    assert not any(s.startswith("warm") for s in sources(here, "fake:GOOG:v20-t20-h1"))
