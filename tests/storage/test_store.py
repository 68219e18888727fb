"""The JSON store: atomic writes, permissions, the best-model pointer, and a crash mid-export."""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.exceptions import StorageError
from storage.record import Record
from storage.store import (
    Publish,
    Written,
    check_writable,
    read_record,
    record_path,
    study_record_path,
    update_best,
    write_json_atomic,
    write_record,
)
from tests.conftest import REPO

ROOT = os.geteuid() == 0
T0 = "2026-11-27T03:00:00+00:00"
T1 = "2026-11-27T04:00:00+00:00"
T2 = "2026-11-27T05:00:00+00:00"


def raw(
    model: str,
    symbol: str,
    val_mae: float,
    *,
    return_mae: float = 0.1,
    windows: tuple[int, int, int] = (20, 20, 1),
    fingerprint: str | None = "fp-1",
    objective: str | None = "price_mae",
    created_at: str = T0,
    trial: int = 0,
) -> dict:
    """A record as the JSON object of its file."""
    val, test, horizon = windows
    metadata: dict = {
        "study_name": f"{model}:{symbol}:v{val}-t{test}-h{horizon}",
        "trial_number": trial,
        "created_at": created_at,
    }
    if objective is not None:
        metadata["objective"] = objective
    if fingerprint is not None:
        metadata["data_fingerprint"] = fingerprint
    return {
        "symbol": symbol,
        "model": model,
        "config": {"name": f"{model}_x"},
        "validation": {"price_mae": val_mae, "return_mae": return_mae, "latency_s": 0.01},
        "test": {"price_mae": 1.0, "return_mae": 0.1, "latency_s": 0.01},
        "windows": {"val_window": val, "test_window": test, "forecast_horizon": horizon},
        "metadata": metadata,
    }


def record(model: str, symbol: str, val_mae: float, **kwargs: object) -> Record:
    return Record.from_json(raw(model, symbol, val_mae, **kwargs))  # type: ignore[arg-type]


def best(store: Path, symbol: str = "AAPL") -> dict:
    found = read_record(store, "best", symbol)
    assert found is not None
    return found.to_json()


def selection(store: Path, symbol: str = "AAPL") -> dict:
    return best(store, symbol)["metadata"]["best_selection"]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask() -> Iterator[object]:
    """Set the process umask for one test, then restore it."""
    old = os.umask(0o022)

    def set_umask(value: int) -> None:
        os.umask(value)

    yield set_umask
    os.umask(old)


# --- the existing behaviour -------------------------------------------------------------------


def test_best_names_the_model_with_the_lower_validation_mae(tmp_path: Path) -> None:
    write_record(tmp_path, record("toto", "AAPL", 2.0))
    assert read_record(tmp_path, "best", "AAPL").model == "toto"
    write_record(tmp_path, record("kronos", "AAPL", 1.5))
    assert read_record(tmp_path, "best", "AAPL").model == "kronos"
    write_record(tmp_path, record("kronos", "AAPL", 3.0))
    assert read_record(tmp_path, "best", "AAPL").model == "toto"
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
from storage.record import Record
def die(fd):
    os.kill(os.getpid(), signal.SIGKILL)  # killed after writing, before the rename
store.os.fsync = die
new = {raw("toto", "AAPL", 1.0)!r}
new["config"]["blob"] = "x" * 1_000_000
store.write_record({str(tmp_path)!r}, Record.from_json(new))
"""
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True)
    assert result.returncode == -9
    assert record_path(tmp_path, "toto", "AAPL").read_text() == before
    assert json.loads(before)["validation"]["price_mae"] == 2.0
    # The lock died with the process: the next export neither blocks nor fails.
    assert write_record(tmp_path, record("toto", "AAPL", 1.0)).replaced is not None


# --- permissions ------------------------------------------------------------------------------


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o027, 0o640)])
def test_files_get_the_umask_mode_and_keep_a_manual_chmod(
    tmp_path: Path, umask, mask: int, expected: int
) -> None:
    umask(mask)
    store = tmp_path / "store"
    written = write_record(store, record("toto", "AAPL", 2.0))
    assert mode(written.path) == expected
    assert written.best_path is not None and mode(written.best_path) == expected
    assert mode(store / "toto") == 0o777 & ~mask
    assert mode(store / "best") == 0o777 & ~mask

    written.path.chmod(0o644)  # what an operator does so that trading code can read it
    written = write_record(store, record("toto", "AAPL", 1.5, trial=1))
    assert written.replaced is not None
    assert mode(written.path) == 0o644  # not undone (never to 0600)
    assert mode(written.best_path) == expected

    written.path.chmod(0o600)  # what older versions left behind
    written = write_record(store, record("toto", "AAPL", 1.0, trial=2))
    assert mode(written.path) == expected  # widened back to the umask default


def test_an_identical_reexport_heals_a_0600_file_without_rewriting_it(
    tmp_path: Path, umask
) -> None:
    umask(0o022)
    path = write_record(tmp_path, record("toto", "AAPL", 2.0)).path
    path.chmod(0o600)
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    written = write_record(tmp_path, record("toto", "AAPL", 2.0))
    assert written.replaced is None and written.best_replaced is None
    assert path.stat().st_mtime_ns == 1_000_000_000
    assert mode(path) == 0o644


# --- best/ compares comparable records only ----------------------------------------------------


def test_a_record_with_other_windows_is_not_compared(tmp_path: Path) -> None:
    write_record(tmp_path, record("kronos", "AAPL", 1.0, created_at=T0))
    written = write_record(
        tmp_path, record("toto", "AAPL", 5.0, windows=(60, 20, 1), created_at=T1)
    )
    assert best(tmp_path)["model"] == "toto"  # the newly finalised record, though its MAE is higher
    assert written.best_replaced is not None and written.best_replaced["model"] == "kronos"
    chosen = selection(tmp_path)
    assert chosen["anchor"] == "toto"
    assert chosen["objective"] == "price_mae"
    assert chosen["compared"] == [
        {
            "model": "toto",
            "study_name": "toto:AAPL:v60-t20-h1",
            "trial_number": 0,
            "validation": 5.0,
        }
    ]
    assert chosen["excluded"] == [
        {
            "model": "kronos",
            "study_name": "kronos:AAPL:v20-t20-h1",
            "reason": "different windows (v20-t20 vs v60-t20)",
        }
    ]
    # kronos re-finalised on the same windows (and made live): compared again, and it wins.
    promote = Publish(promote=True)
    write_record(
        tmp_path, record("kronos", "AAPL", 3.0, windows=(60, 20, 1), created_at=T2), promote
    )
    assert best(tmp_path)["model"] == "kronos"
    assert [c["model"] for c in selection(tmp_path)["compared"]] == ["kronos", "toto"]
    assert selection(tmp_path)["excluded"] == []


def test_a_different_horizon_is_named(tmp_path: Path) -> None:
    write_record(tmp_path, record("kronos", "AAPL", 1.0, created_at=T0))
    write_record(tmp_path, record("toto", "AAPL", 5.0, windows=(20, 20, 5), created_at=T1))
    [excluded] = selection(tmp_path)["excluded"]
    assert excluded["reason"] == "different windows (v20-t20-h1 vs v20-t20-h5)"


def test_a_record_on_other_data_is_not_compared(tmp_path: Path) -> None:
    write_record(tmp_path, record("kronos", "AAPL", 1.0, fingerprint="old", created_at=T0))
    write_record(tmp_path, record("toto", "AAPL", 5.0, fingerprint="new", created_at=T1))
    assert best(tmp_path)["model"] == "toto"
    [excluded] = selection(tmp_path)["excluded"]
    assert excluded["model"] == "kronos"
    assert excluded["reason"] == "different data fingerprint"


def test_a_record_without_fingerprint_is_comparable_only_with_itself(tmp_path: Path) -> None:
    write_record(tmp_path, record("kronos", "AAPL", 1.0, fingerprint=None, created_at=T0))
    write_record(tmp_path, record("toto", "AAPL", 5.0, created_at=T1))
    assert best(tmp_path)["model"] == "toto"
    assert selection(tmp_path)["excluded"][0]["reason"] == "different data fingerprint (unknown)"
    # ...and as the newest record it is the only one compared.
    write_record(tmp_path, record("kronos", "AAPL", 9.0, fingerprint=None, created_at=T2))
    assert best(tmp_path)["model"] == "kronos"
    assert [e["model"] for e in selection(tmp_path)["excluded"]] == ["toto"]


def test_a_record_with_another_objective_is_not_compared(tmp_path: Path) -> None:
    write_record(tmp_path, record("kronos", "AAPL", 1.0, created_at=T0))
    write_record(tmp_path, record("toto", "AAPL", 5.0, objective="return_mae", created_at=T1))
    assert best(tmp_path)["model"] == "toto"
    chosen = selection(tmp_path)
    assert chosen["objective"] == "return_mae"
    assert chosen["excluded"][0]["reason"] == "different objective (price_mae vs return_mae)"


def test_all_reasons_are_listed(tmp_path: Path) -> None:
    write_record(tmp_path, record("kronos", "AAPL", 1.0, created_at=T0))
    write_record(
        tmp_path,
        record(
            "toto",
            "AAPL",
            5.0,
            windows=(60, 20, 1),
            fingerprint="x",
            objective="return_mae",
            created_at=T1,
        ),
    )
    assert selection(tmp_path)["excluded"][0]["reason"] == (
        "different windows (v20-t20 vs v60-t20); different data fingerprint; "
        "different objective (price_mae vs return_mae)"
    )


def test_the_return_mae_objective_compares_return_mae(tmp_path: Path) -> None:
    toto = record("toto", "AAPL", 1.0, return_mae=0.5, objective="return_mae")
    kronos = record("kronos", "AAPL", 2.0, return_mae=0.2, objective="return_mae", created_at=T1)
    write_record(tmp_path, toto)
    write_record(tmp_path, kronos)
    assert best(tmp_path)["model"] == "kronos"
    assert selection(tmp_path)["compared"] == [
        {
            "model": "kronos",
            "study_name": "kronos:AAPL:v20-t20-h1",
            "trial_number": 0,
            "validation": 0.2,
        },
        {
            "model": "toto",
            "study_name": "toto:AAPL:v20-t20-h1",
            "trial_number": 0,
            "validation": 0.5,
        },
    ]


def test_a_missing_objective_means_price_mae(tmp_path: Path) -> None:
    write_record(tmp_path, record("kronos", "AAPL", 1.0, objective=None, created_at=T0))
    write_record(tmp_path, record("toto", "AAPL", 5.0, created_at=T1))
    assert best(tmp_path)["model"] == "kronos"
    assert selection(tmp_path)["excluded"] == []


def test_ties_go_to_the_model_name(tmp_path: Path) -> None:
    write_record(tmp_path, record("toto", "AAPL", 1.0))
    write_record(tmp_path, record("kronos", "AAPL", 1.0))
    assert best(tmp_path)["model"] == "kronos"
    assert selection(tmp_path)["anchor"] == "kronos"  # same created_at: first model name


def test_dot_folders_and_lock_files_are_not_model_records(tmp_path: Path) -> None:
    write_record(tmp_path, record("toto", "AAPL", 2.0))
    assert (tmp_path / ".locks" / "AAPL.lock").exists()
    write_json_atomic(tmp_path / ".hidden" / "AAPL.json", raw("hidden", "AAPL", 0.1))
    (tmp_path / ".locks" / "AAPL.json").write_text("{not json")
    assert update_best(tmp_path, "AAPL") == record_path(tmp_path, "best", "AAPL")
    assert best(tmp_path)["model"] == "toto"
    assert selection(tmp_path)["excluded"] == []


# --- healing ----------------------------------------------------------------------------------


def test_a_corrupt_sibling_is_skipped_listed_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_record(tmp_path, record("kronos", "AAPL", 1.0))
    record_path(tmp_path, "kronos", "AAPL").write_text('{"symbol": "AAPL", ')
    with caplog.at_level(logging.WARNING, logger="storage.store"):
        written = write_record(tmp_path, record("toto", "AAPL", 5.0))
    assert written.best_path == record_path(tmp_path, "best", "AAPL")
    assert best(tmp_path)["model"] == "toto"
    [excluded] = selection(tmp_path)["excluded"]
    assert excluded["model"] == "kronos"
    assert excluded["reason"].startswith("unreadable: not valid JSON")
    assert any("kronos" in r.getMessage() for r in caplog.records)
    with pytest.raises(StorageError, match="not valid JSON"):
        read_record(tmp_path, "kronos", "AAPL")


def test_a_corrupt_or_stale_best_file_is_rewritten(tmp_path: Path) -> None:
    write_record(tmp_path, record("toto", "AAPL", 2.0))
    best_file = record_path(tmp_path, "best", "AAPL")
    best_file.write_text("garbage")
    written = write_record(tmp_path, record("kronos", "AAPL", 3.0))
    assert written.best_replaced == {
        "model": "best",
        "unreadable": "not valid JSON (Expecting value)",
    }
    assert best(tmp_path)["model"] == "toto"
    write_json_atomic(best_file, raw("kronos", "AAPL", 3.0))  # stale
    assert update_best(tmp_path, "AAPL") == best_file
    assert best(tmp_path)["model"] == "toto"


def test_a_corrupt_own_record_is_replaced(tmp_path: Path) -> None:
    path = record_path(tmp_path, "toto", "AAPL")
    path.parent.mkdir(parents=True)
    path.write_text("[1, 2")
    written = write_record(tmp_path, record("toto", "AAPL", 2.0))
    assert written.replaced == {
        "model": "toto",
        "unreadable": "not valid JSON (Expecting ',' delimiter)",
    }
    assert read_record(tmp_path, "toto", "AAPL").validation.price_mae == 2.0


# --- what is replaced ---------------------------------------------------------------------------


def test_written_summarises_what_it_replaced(tmp_path: Path) -> None:
    first = write_record(tmp_path, record("toto", "AAPL", 2.0, trial=1))
    assert first == Written(
        record_path(tmp_path, "toto", "AAPL"), None, record_path(tmp_path, "best", "AAPL"), None,
        study_record_path(tmp_path, "toto", "toto:AAPL:v20-t20-h1"), live=True,
    )  # fmt: skip
    second = write_record(tmp_path, record("toto", "AAPL", 1.5, trial=2))
    old = {
        "model": "toto",
        "study_name": "toto:AAPL:v20-t20-h1",
        "trial_number": 1,
        "objective": "price_mae",
        "validation": 2.0,
        "validation_price_mae": 2.0,
    }
    assert second.replaced == old
    assert second.best_replaced == old
    third = write_record(tmp_path, record("kronos", "AAPL", 9.0, trial=5))
    assert third.replaced is None
    assert third.best_replaced is not None  # best/ now lists kronos as compared
    assert third.best_replaced["trial_number"] == 2
    with pytest.raises(AttributeError):
        third.path = tmp_path  # type: ignore[misc]


def test_an_equal_record_is_not_rewritten(tmp_path: Path) -> None:
    rec = raw("toto", "AAPL", 2.0)
    rec["validation"]["return_mae"] = float("nan")  # NaN != NaN must not force a rewrite
    written = write_record(tmp_path, Record.from_json(rec))
    for path in (written.path, written.best_path):
        os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    again = write_record(tmp_path, Record.from_json(json.dumps(rec)))
    assert again.replaced is None and again.best_replaced is None
    assert written.path.stat().st_mtime_ns == 1_000_000_000
    assert written.best_path.stat().st_mtime_ns == 1_000_000_000


# --- unwritable stores --------------------------------------------------------------------------


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_check_writable_leaves_no_trace_for_a_missing_folder(tmp_path: Path) -> None:
    store = tmp_path / "a" / "store"
    check_writable(store)
    assert list(tmp_path.iterdir()) == []  # nothing created: bad input elsewhere leaves no trace
    store.mkdir(parents=True)
    check_writable(store)
    assert list(store.iterdir()) == []


def test_check_writable_rejects_a_file(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.write_text("")
    with pytest.raises(StorageError) as exc:
        check_writable(store)
    assert one_line(exc) == f"store path {store} is a file, not a folder; pass --store DIR"


def test_check_writable_rejects_a_folder_below_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    store = tmp_path / "file" / "store"
    with pytest.raises(StorageError) as exc:
        check_writable(store)
    assert str(store) in one_line(exc) and "pass --store DIR" in one_line(exc)


@pytest.mark.skipif(ROOT, reason="root ignores folder permissions")
def test_check_writable_rejects_a_read_only_folder(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir(mode=0o555)
    try:
        with pytest.raises(StorageError) as exc:
            check_writable(store)
        assert one_line(exc) == (
            f"store folder {store} is not writable (Permission denied); pass --store DIR"
        )
    finally:
        store.chmod(0o755)


def test_write_record_into_a_file_path_is_a_storage_error(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.write_text("")
    with pytest.raises(StorageError) as exc:
        write_record(store, record("toto", "AAPL", 1.0))
    assert str(store) in one_line(exc)
    with pytest.raises(StorageError) as exc:
        update_best(store, "AAPL")
    assert str(store) in one_line(exc)


def test_a_model_folder_that_is_a_file_is_a_storage_error(tmp_path: Path) -> None:
    (tmp_path / "toto").write_text("")
    with pytest.raises(StorageError) as exc:
        write_record(tmp_path, record("toto", "AAPL", 1.0))
    assert str(tmp_path / "toto") in one_line(exc)


@pytest.mark.skipif(ROOT, reason="root ignores folder permissions")
def test_a_read_only_model_folder_is_a_storage_error(tmp_path: Path) -> None:
    write_record(tmp_path, record("toto", "AAPL", 2.0))
    (tmp_path / "toto").chmod(0o555)
    try:
        with pytest.raises(StorageError) as exc:
            write_record(tmp_path, record("toto", "AAPL", 1.0))
        assert "Permission denied" in one_line(exc)
        assert str(record_path(tmp_path, "toto", "AAPL")) in one_line(exc)
    finally:
        (tmp_path / "toto").chmod(0o755)


@pytest.mark.parametrize("model", ["best", ".locks", "a/b", ""])
def test_a_model_name_that_cannot_name_a_folder_is_refused(tmp_path: Path, model: str) -> None:
    with pytest.raises(StorageError):
        write_record(tmp_path, record(model, "AAPL", 1.0))
