"""The live record changes only on purpose, every study keeps its own record, and the trading
code's loader reads every file the project writes.

The loader is transcribed (not imported) from lee101/stock-prediction 3d98a753:
``hyperparamstore/store.py`` (``HyperparamRecord.from_payload``, ``HyperparamStore.load``,
``load_model_selection``) and ``update_best_configs_by_return_mae.py`` (which model folders'
symbols it reads, and ``test.pct_return_mae``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from storage.names import study_file_stem
from storage.record import Record
from storage.store import (
    Publish,
    read_record,
    record_path,
    study_record_path,
    write_record,
)
from tests.conftest import launch_fake, run_cli

T0 = "2026-11-27T03:00:00+00:00"
T1 = "2026-11-27T04:00:00+00:00"


# --- the trading code's loader, transcribed -----------------------------------------------------


@dataclass
class HyperparamRecord:
    config: dict[str, Any]
    validation: dict[str, Any]
    test: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> HyperparamRecord:
        return cls(
            config=payload["config"],
            validation=payload["validation"],
            test=payload["test"],
            metadata=payload.get("metadata", {}),
        )


def load_best_config(root: Path, model: str, symbol: str) -> HyperparamRecord | None:
    """``<root>/<model>/<symbol>.json``, the symbol exactly as asked."""
    path = root / model / f"{symbol}.json"
    if not path.exists():
        return None
    with path.open("r") as fp:
        return HyperparamRecord.from_payload(json.load(fp))


def load_model_selection(root: Path, symbol: str) -> dict[str, Any] | None:
    path = root / "best" / f"{symbol}.json"
    if not path.exists():
        return None
    with path.open("r") as fp:
        return json.load(fp)


def selection_symbols(root: Path, model: str) -> set[str]:
    """The symbols its selection script finds in a model folder (``glob("*.json")``, stems)."""
    return {p.stem for p in (root / model).glob("*.json")}


def project_files(store: Path) -> list[Path]:
    """Every JSON file the project wrote under ``store`` (dot-folders hold locks, copies and
    dashboard artifacts, not records)."""
    found = []
    for folder, subfolders, names in os.walk(store):
        subfolders[:] = [s for s in subfolders if not s.startswith(".")]
        found += [Path(folder) / n for n in names if n.endswith(".json")]
    return sorted(found)


# --- records --------------------------------------------------------------------------------------


def record(
    val: float,
    *,
    windows: tuple[int, int, int] = (20, 20, 1),
    metric: str = "price_mae",
    task: str = "trading",
    created_at: str = T0,
    trial: int = 0,
    suffix: str = "",
) -> Record:
    v, t, h = windows
    name = f"toto:AAPL:v{v}-t{t}-h{h}:{task}{suffix}"
    scores = {"price_mae": val, "return_mae": val / 100, "pct_return_mae": val / 100,
              "latency_s": 0.01}  # fmt: skip
    return Record.from_json(
        {
            "symbol": "AAPL",
            "model": "toto",
            "config": {"name": "toto_opt_mean_256_spb256"},
            "validation": scores,
            "test": dict(scores),
            "windows": {"val_window": v, "test_window": t, "forecast_horizon": h},
            "metadata": {
                "source": "optimise (optuna)",
                "study_name": name,
                "trial_number": trial,
                "objective": metric,
                "task": {"name": task, "columns": ["close"], "path_score": "mean"},
                "data_fingerprint": "fp",
                "created_at": created_at,
            },
        }
    )


def table_rows(out: str) -> dict[str, str]:
    """``status``'s table rows by study (the lines under the table start with spaces)."""
    return {line.split()[0]: line.rstrip() for line in out.splitlines() if line[:1].isalpha()}


def live(store: Path) -> str:
    found = read_record(store, "toto", "AAPL")
    assert found is not None
    return found.metadata.study_name


# --- the live rule --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("experiment", "why"),
    [
        (record(1.0, windows=(60, 20, 1), created_at=T1), "windows v20-t20-h1, this study's v60"),
        (record(1.0, metric="return_mae", created_at=T1, suffix=":return_mae"), "metric price_mae"),
        (record(1.0, task="levels", created_at=T1), "task trading[close], this study's levels"),
    ],
)
def test_an_experiment_is_written_apart_and_leaves_the_live_record(
    tmp_path: Path, experiment: Record, why: str
) -> None:
    write_record(tmp_path, record(2.0))
    before = {p: p.read_bytes() for p in (tmp_path / "toto/AAPL.json", tmp_path / "best/AAPL.json")}
    written = write_record(tmp_path, experiment)
    assert {p: p.read_bytes() for p in before} == before  # live and best/ untouched
    assert not written.live and written.replaced is None
    assert written.study_path == study_record_path(tmp_path, "toto", experiment.metadata.study_name)
    assert Record.from_json(written.study_path.read_bytes()) == experiment
    [line] = [n for n in written.notes if n.startswith(str(tmp_path / "toto/AAPL.json"))]
    assert f"kept the live record of study {record(2.0).metadata.study_name}" in line
    assert why in line and "--promote" in line and str(written.study_path) in line
    promoted = write_record(tmp_path, experiment, Publish(promote=True))
    assert promoted.live and live(tmp_path) == experiment.metadata.study_name
    assert read_record(tmp_path, "best", "AAPL").metadata.study_name == live(tmp_path)


def test_the_same_protocol_replaces_the_live_record_unless_older(tmp_path: Path) -> None:
    write_record(tmp_path, record(2.0, created_at=T0))
    refreshed = record(3.0, created_at=T1, trial=4, suffix="@2013-03-01")  # a later period
    write_record(tmp_path, refreshed)
    assert live(tmp_path).endswith("@2013-03-01")
    older = record(1.0, created_at=T0, trial=9)  # the first period re-exported
    written = write_record(tmp_path, older)
    assert live(tmp_path).endswith("@2013-03-01") and not written.live
    assert any(f"it is newer ({T1})" in n for n in written.notes)
    assert write_record(tmp_path, refreshed).live  # re-publishing the live record: no change


def test_an_unreadable_live_record_is_replaced(tmp_path: Path) -> None:
    path = record_path(tmp_path, "toto", "AAPL")
    path.parent.mkdir(parents=True)
    path.write_text("{oops")
    experiment = record(2.0, windows=(60, 20, 1))
    write_record(tmp_path, experiment)  # any record heals it, and is kept apart as well
    assert read_record(tmp_path, "toto", "AAPL") == experiment
    own = study_record_path(tmp_path, "toto", experiment.metadata.study_name)
    assert Record.from_json(own.read_bytes()) == experiment


def test_study_file_names_are_safe_and_distinct() -> None:
    names = [
        "toto:AAPL:v20-t20-h1:trading",
        "toto:AAPL:v20-t20-h1:trading:crps",
        "toto:AAPL:v20-t20-h1:trading@2013-03-01T093000",
        "kronos:ADA-USD:v20-t20-h7:trading:cols-close-high:path-last",
        "toto:BRK.B:v60-t20-h1",
        ".hidden:x",
        "toto:" + "X" * 64 + ":v20-t20-h1:trading:direction_accuracy@2013-03-01T093000",
    ]
    stems = [study_file_stem(n) for n in names]
    assert stems[0] == "toto_AAPL_v20-t20-h1_trading"
    assert len(set(stems)) == len(stems)
    for stem in stems:
        assert stem and not stem.startswith(".") and len(stem) <= 160
        assert all(c.isalnum() or c in "._@-" for c in stem), stem


# --- end to end: a --val-window 60 experiment beside the default study ----------------------------


def test_an_experiment_stays_apart_until_promoted_and_the_trading_loader_reads_every_file(
    workdir: Path, sample_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = workdir / "store"
    default, experiment = "fake:AAPL:v20-t20-h1:trading", "fake:AAPL:v60-t20-h1:trading"
    assert launch_fake(sample_data, 1) == 0
    files = {p: p.read_bytes() for p in (store / "fake/AAPL.json", store / "best/AAPL.json")}
    assert launch_fake(sample_data, 1, "--val-window", "60") == 0
    out = capsys.readouterr().out
    assert {p: p.read_bytes() for p in files} == files  # the live record and best/ stay
    own = study_record_path(store, "fake", experiment)
    assert Record.from_json(own.read_bytes()).windows.val_window == 60
    assert f"kept the live record of study {default}" in out and "(not live)" in out

    assert run_cli("status", "--wide") == 0
    rows = table_rows(capsys.readouterr().out)
    assert rows[default].endswith(" yes")
    assert rows[experiment].endswith(f"no: {default} is live")

    assert run_cli("export", "--model", "fake", "--symbols", "AAPL", "--data-dir", sample_data,
                   "--val-window", "60", "--promote") == 0  # fmt: skip
    assert read_record(store, "fake", "AAPL").metadata.study_name == experiment
    assert Record.from_json(study_record_path(store, "fake", default).read_bytes()).windows == (
        Record.from_json(files[store / "fake/AAPL.json"]).windows
    )  # the default study's record is kept apart
    # best/ keeps the default study's record: the experiment does not beat naive (one trial:
    # the known-good setting, the naive forecast itself), so it displaces nothing there
    assert (store / "best/AAPL.json").read_bytes() == files[store / "best/AAPL.json"]
    capsys.readouterr()
    assert run_cli("status", "--wide") == 0
    rows = table_rows(capsys.readouterr().out)
    assert rows[experiment].endswith(" yes")
    assert rows[default].endswith(f"no: {experiment} is live")
    assert run_cli("export", "--model", "fake", "--all", "--promote") == 2  # one study a symbol

    # the trading code's loader reads every file the project wrote
    written = project_files(store)
    assert {p.relative_to(store).as_posix() for p in written} >= {
        "fake/AAPL.json",
        "best/AAPL.json",
        f"fake/studies/{study_file_stem(default)}.json",
        f"fake/studies/{study_file_stem(experiment)}.json",
    }
    for path in written:
        payload = json.loads(path.read_text())
        loaded = HyperparamRecord.from_payload(payload)
        assert isinstance(loaded.config["name"], str) and loaded.config["name"].startswith(
            "fake_opt"
        )
        for window in (loaded.validation, loaded.test):
            assert window["pct_return_mae"] == window["return_mae"], path
    picked = load_model_selection(store, "AAPL")
    assert picked is not None and picked["model"] == "fake"
    assert picked["config_path"] == "store/fake/AAPL.json"
    assert picked["metadata"]["selection_metric"] == "validation_pct_return_mae"
    assert set(picked["metadata"]["candidate_pct_return_mae"]) == {"fake"}
    loaded = load_best_config(store, picked["model"], "AAPL")
    assert loaded is not None and loaded.metadata["study_name"] == experiment
    assert selection_symbols(store, "fake") == {"AAPL"}  # studies/ is never a symbol
