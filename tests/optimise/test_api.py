"""``optimise.api``: the README's example runs as printed, and each function on its own, against
a study of the fake backend launched once for the module."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from objectives.bars import load_bars
from objectives.evaluator import load_backend
from objectives.exceptions import DataError
from optimise import api
from storage.exceptions import StorageError
from studies.exceptions import StudyError
from tests.conftest import REPO, SAMPLE_DATA, launch_fake, run_cli

STUDY = "fake:AAPL:v20-t20-h1:trading"


@pytest.fixture(scope="module")
def launched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder where ``optimise launch`` of the fake model ran (``studies.db``, ``store/``)."""
    folder = tmp_path_factory.mktemp("api")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        patch.delenv("OPTIMISE_STORAGE", raising=False)
        patch.delenv("HYPERPARAM_ROOT", raising=False)
        assert launch_fake(SAMPLE_DATA, 4) == 0
    return folder


@pytest.fixture
def here(launched: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in the launched folder."""
    monkeypatch.chdir(launched)
    monkeypatch.delenv("OPTIMISE_STORAGE", raising=False)
    return launched


@pytest.fixture
def copy_of(launched: Path, tmp_path: Path) -> Iterator[Path]:
    """A copy of the launched store a test may change."""
    store = tmp_path / "store"
    shutil.copytree(launched / "store", store)
    yield store


def readme_example() -> str:
    """The fenced Python block of the README's "Python API" section."""
    text = (REPO / "README.md").read_text()
    section = text.split("\n## Python API\n", 1)[1].split("\n## ", 1)[0]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found is not None
    return found.group(1)


def test_the_readme_example_runs_as_printed(here: Path) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(readme_example(), "README.md", "exec"), {})
    lines = out.getvalue().splitlines()
    record = json.loads((here / "store/fake/AAPL.json").read_text())
    assert lines[0].startswith(str(record["config"]))
    assert lines[1].startswith(f"{STUDY} {record['metadata']['trial_number']} ")
    assert lines[2].startswith("1 confirmed ")
    columns = record["metadata"]["task"]["columns"]  # the trading task: one row per column
    assert len(lines) == 2 + 3 + 4 * len(columns)  # 3 leaderboard rows, 3 bars and the next
    assert lines[-1].endswith(" None")  # the next bar has no actual yet


def test_live_record_is_the_live_file_and_foreign_files_are_reported(copy_of: Path) -> None:
    record = api.live_record(copy_of, "fake", "AAPL")
    assert isinstance(record, api.Record)
    assert record.to_json() == json.loads((copy_of / "fake/AAPL.json").read_text())
    assert api.live_record(copy_of, "fake", "MSFT") is None
    assert api.live_record(copy_of, "toto", "AAPL") is None
    foreign = {
        "symbol": "AAPL", "model": "toto",
        "config": {"name": "toto_opt_mean_64_spb64", "num_samples": 64, "aggregate": "mean"},
        "validation": {"price_mae": 1.0, "pct_return_mae": 0.01, "latency_s": 1.0},
        "test": {"price_mae": 1.0, "pct_return_mae": 0.01, "latency_s": 1.0},
        "windows": {"val_window": 20, "test_window": 20, "forecast_horizon": 1},
        "metadata": {"source": "hyperparams_extended"},
    }  # fmt: skip
    (copy_of / "toto").mkdir()
    (copy_of / "toto/AAPL.json").write_text(json.dumps(foreign))
    seen = api.live_record(copy_of, "toto", "AAPL")
    assert isinstance(seen, api.Foreign) and seen.record is None
    assert "source hyperparams_extended" in seen.describe()
    (copy_of / "fake/AAPL.json").write_text("{")
    with pytest.raises(StorageError, match="not valid JSON"):
        api.live_record(copy_of, "fake", "AAPL")
    with pytest.raises(DataError, match="not a plain ticker"):
        api.live_record(copy_of, "fake", "../AAPL")


def test_best_model_is_the_model_best_names(copy_of: Path) -> None:
    assert api.best_model(copy_of, "AAPL") == "fake"
    assert api.best_model(copy_of, "MSFT") is None
    best = json.loads((copy_of / "best/AAPL.json").read_text())
    (copy_of / "best/AAPL.json").write_text(json.dumps({**best, "model": "kronos"}))
    assert api.best_model(copy_of, "AAPL") == "kronos"


def test_study_records_are_the_symbols_own_records_oldest_first(copy_of: Path) -> None:
    (own,) = api.study_records(copy_of, "fake", "AAPL")
    assert own.metadata.study_name == STUDY
    assert own == api.live_record(copy_of, "fake", "AAPL")
    studies = copy_of / "fake/studies"
    data = json.loads(next(studies.glob("*.json")).read_text())
    older = {**data, "metadata": {**data["metadata"], "study_name": "fake:AAPL:old",
                                  "created_at": "2001-01-01T00:00:00+00:00"}}  # fmt: skip
    (studies / "fake_AAPL_old.json").write_text(json.dumps(older))
    (studies / "fake_MSFT.json").write_text(json.dumps({**data, "symbol": "MSFT"}))
    names = [r.metadata.study_name for r in api.study_records(copy_of, "fake", "AAPL")]
    assert names == ["fake:AAPL:old", STUDY]
    assert [r.symbol for r in api.study_records(copy_of, "fake", "MSFT")] == ["MSFT"]
    assert api.study_records(copy_of, "toto", "AAPL") == []
    (studies / "broken.json").write_text("[]")
    with pytest.raises(StorageError, match="broken.json"):
        api.study_records(copy_of, "fake", "AAPL")


def test_leaderboard_is_the_status_top_ranking(here: Path, capsys) -> None:
    rows = api.leaderboard(None, model="fake", symbol="AAPL", top=3)
    assert rows == api.leaderboard("sqlite:///studies.db", STUDY, top=3)
    assert [r.rank for r in rows] == [1, 2, 3] and rows[0].winner
    record = api.live_record("store", "fake", "AAPL")
    assert isinstance(record, api.Record)
    assert rows[0].trial == record.metadata.trial_number
    assert rows[0].config == record.settings
    capsys.readouterr()
    assert run_cli("status", "--top", "3", "--format", "json") == 0
    (board,) = json.loads(capsys.readouterr().out)["studies"]
    assert [(r["trial"], r["ranked_by"]) for r in board["rows"]] == [
        (r.trial, r.ranked_by) for r in rows
    ]


def test_leaderboard_refuses_what_it_cannot_name(here: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="study_name, or a model and a symbol"):
        api.leaderboard()
    with pytest.raises(DataError, match="study_name, or a model and a symbol"):
        api.leaderboard(None, STUDY, model="fake")
    with pytest.raises(DataError, match="both a model and a symbol"):
        api.leaderboard(None, model="fake")
    with pytest.raises(StudyError, match="no study of model fake and symbol MSFT"):
        api.leaderboard(None, model="fake", symbol="MSFT")
    with pytest.raises(StudyError, match="no study fake:MSFT"):
        api.leaderboard(None, "fake:MSFT:v20-t20-h1:trading")
    with pytest.raises(StorageError, match="no study database"):
        api.leaderboard(f"sqlite:///{tmp_path / 'missing.db'}", STUDY)


def test_forecast_gives_the_rows_forecast_from_store_prints(here: Path, capsys) -> None:
    record = api.live_record("store", "fake", "AAPL")
    assert isinstance(record, api.Record)
    capsys.readouterr()
    args = ["forecast", "--model", "fake", "--symbol", "AAPL", "--from-store", "--last", "3"]
    assert run_cli(*args, "--json") == 0
    printed = json.loads(capsys.readouterr().out)
    rows = api.forecast(record, last=3)
    assert rows == printed
    assert len({r["target_timestamp"] for r in rows}) == 4  # the last 3 bars and the next
    assert rows[-1]["actual"] is None
    bars = load_bars(SAMPLE_DATA, "AAPL")
    assert api.forecast(record, bars, last=3, backend=load_backend("fake")) == printed
    assert len(api.forecast(record, str(SAMPLE_DATA), last=0)) == len(rows) // 4
    noisy = dataclasses.replace(record, config={**record.config, "noise": 0.01})
    assert api.forecast(noisy, last=3, seed=1) != api.forecast(noisy, last=3) != printed


def test_forecast_refuses_what_it_cannot_run(here: Path) -> None:
    record = api.live_record("store", "fake", "AAPL")
    assert isinstance(record, api.Record)
    with pytest.raises(DataError, match="last must be between 0 and 599"):
        api.forecast(record, last=600)
    foreign = api.Foreign("toto", "AAPL", "hyperparams_extended", None, None)
    with pytest.raises(DataError, match="cannot forecast with a foreign record"):
        api.forecast(foreign)
    with pytest.raises(DataError):
        api.forecast(record, here / "no-such-folder")
