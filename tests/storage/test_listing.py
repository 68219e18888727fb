"""Listing studies reads no trial (``storage/listing.py``): opening a study in a database of
many lists them all, and Optuna's summaries read every trial of every one."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from storage.listing import all_studies
from studies.refresh import UID_ATTR, periods


def _storage_with_studies(path: Path) -> optuna.storages.BaseStorage:
    """Three studies of three trials, in the storage Optuna makes of a URL (with its cache)."""
    storage = optuna.storages.get_storage(f"sqlite:///{path}")
    for name in ("toto:AAPL:v20-t20-h1", "toto:AAPL:v20-t20-h1@2026-01-02", "toto:MSFT:v20-t20-h1"):
        study = optuna.create_study(study_name=name, storage=storage)
        study.set_user_attr(UID_ATTR, name)
        study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=3)
    return storage


def test_listing_and_periods_read_no_trial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = _storage_with_studies(tmp_path / "s.db")

    def no_trials(*args: object, **kwargs: object) -> None:
        pytest.fail("listing studies read their trials")

    monkeypatch.setattr(storage, "get_all_trials", no_trials)
    names = sorted(s.study_name for s in all_studies(storage))
    assert names == [
        "toto:AAPL:v20-t20-h1",
        "toto:AAPL:v20-t20-h1@2026-01-02",
        "toto:MSFT:v20-t20-h1",
    ]
    chain = periods(storage, "toto:AAPL:v20-t20-h1")
    assert [p.name for p in chain] == ["toto:AAPL:v20-t20-h1", "toto:AAPL:v20-t20-h1@2026-01-02"]
