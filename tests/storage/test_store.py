"""The JSON store: atomic writes, the best-model pointer, and a crash mid-export."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from storage.store import read_record, record_path, update_best, write_json_atomic, write_record
from tests.conftest import REPO


def record(model: str, symbol: str, val_mae: float) -> dict:
    return {
        "symbol": symbol,
        "model": model,
        "config": {"name": f"{model}_x"},
        "validation": {"price_mae": val_mae, "return_mae": 0.1, "latency_s": 0.01},
        "test": {"price_mae": 1.0, "return_mae": 0.1, "latency_s": 0.01},
        "windows": {"val_window": 20, "test_window": 20, "forecast_horizon": 1},
        "metadata": {},
    }


def test_best_names_the_model_with_the_lower_validation_mae(tmp_path: Path) -> None:
    write_record(tmp_path, record("toto", "AAPL", 2.0))
    assert read_record(tmp_path, "best", "AAPL")["model"] == "toto"
    write_record(tmp_path, record("kronos", "AAPL", 1.5))
    assert read_record(tmp_path, "best", "AAPL")["model"] == "kronos"
    write_record(tmp_path, record("kronos", "AAPL", 3.0))
    assert read_record(tmp_path, "best", "AAPL")["model"] == "toto"
    assert update_best(tmp_path, "MSFT") is None


def test_an_atomic_write_leaves_no_temporary_files(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b.json"
    write_json_atomic(path, {"x": 1})
    write_json_atomic(path, {"x": 2})
    assert json.loads(path.read_text()) == {"x": 2}
    assert [p.name for p in path.parent.iterdir()] == ["b.json"]


def test_a_process_killed_during_export_leaves_the_previous_file_intact(tmp_path: Path) -> None:
    write_record(tmp_path, record("toto", "AAPL", 2.0))
    before = record_path(tmp_path, "toto", "AAPL").read_text()
    script = f"""
import os, signal
import storage.store as store
def die(fd):
    os.kill(os.getpid(), signal.SIGKILL)  # killed after writing, before the rename
store.os.fsync = die
new = {record("toto", "AAPL", 1.0)!r}
new["metadata"] = {{"blob": "x" * 1_000_000}}
store.write_record({str(tmp_path)!r}, new)
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True)
    assert result.returncode == -9
    assert record_path(tmp_path, "toto", "AAPL").read_text() == before
    assert json.loads(before)["validation"]["price_mae"] == 2.0
