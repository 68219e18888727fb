"""Concurrent exports of one symbol serialise: best/ ends on the lower of the final records."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

from storage.record import Record
from storage.store import read_record, write_record
from tests.conftest import REPO

SYMBOLS = [f"S{i:03d}" for i in range(40)]
ROUNDS = 3


def value(model: str, symbol: str, round_: int) -> float:
    """A deterministic validation MAE; which model wins depends on the symbol."""
    i = int(symbol[1:])
    base = 1.0 + (i % 7) / 10
    if model == "toto":
        return base + (0.05 if i % 2 else -0.05) + round_ / 1000
    return base + round_ / 1000


WRITER = """
import json, sys, time
from pathlib import Path
from storage.record import Record
from storage.store import write_record
store, model, start, payload = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), sys.argv[4]
records = json.loads(payload)
while not start.exists():
    time.sleep(0.001)
for rec in records:
    write_record(store, Record.from_json(rec))
"""


def records_for(model: str) -> list[dict]:
    out = []
    for round_ in range(ROUNDS):
        for symbol in SYMBOLS:
            out.append(
                {
                    "symbol": symbol,
                    "model": model,
                    "config": {"name": f"{model}_x"},
                    "validation": {
                        "price_mae": value(model, symbol, round_),
                        "return_mae": 0.1,
                        "latency_s": 0.01,
                    },
                    "test": {"price_mae": 1.0, "return_mae": 0.1, "latency_s": 0.01},
                    "windows": {"val_window": 20, "test_window": 20, "forecast_horizon": 1},
                    "metadata": {
                        "study_name": f"{model}:{symbol}",
                        "trial_number": round_,
                        "objective": "price_mae",
                        "data_fingerprint": "fp",
                        "created_at": "2026-11-27T03:00:00+00:00",
                    },
                }
            )
    return out


def check_store(store: Path) -> None:
    last = ROUNDS - 1
    for symbol in SYMBOLS:
        toto, kronos = value("toto", symbol, last), value("kronos", symbol, last)
        assert read_record(store, "toto", symbol).validation.price_mae == toto
        assert read_record(store, "kronos", symbol).validation.price_mae == kronos
        best = read_record(store, "best", symbol).to_json()
        expected = "toto" if (toto, "toto") < (kronos, "kronos") else "kronos"
        assert best["model"] == expected, symbol
        assert best["metadata"]["trial_number"] == last, symbol
        compared = {
            c["model"]: c["validation"] for c in best["metadata"]["best_selection"]["compared"]
        }
        assert compared == {"toto": toto, "kronos": kronos}, symbol
    leftovers = [p for p in store.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
    assert sorted(p.name for p in store.iterdir()) == [".locks", "best", "kronos", "toto"]


def test_two_processes_exporting_both_models_leave_best_on_the_lower(tmp_path: Path) -> None:
    store, start = tmp_path / "store", tmp_path / "start"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WRITER,
                str(store),
                model,
                str(start),
                json.dumps(records_for(model)),
            ],
            cwd=REPO,
            stderr=subprocess.PIPE,
            text=True,
        )
        for model in ("toto", "kronos")
    ]
    start.touch()
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    check_store(store)


def test_threads_exporting_both_models_leave_best_on_the_lower(tmp_path: Path) -> None:
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def export(records: list[dict]) -> None:
        try:
            barrier.wait()
            for rec in records:
                write_record(tmp_path, Record.from_json(rec))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=export, args=(records_for(model),)) for model in ("toto", "kronos")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    check_store(tmp_path)
