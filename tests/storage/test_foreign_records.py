"""Records this project did not write (the trading code's) are read, shown as foreign, compared
only when comparable, and never overwritten without ``--replace-foreign``; a record that loses
to naive never displaces another in ``best/``.

The trading code's records are made here from its schema (``../shared/CONSUMER.md``) with the
values of its real ``hyperparams/`` files of 2025-11 (lee101/stock-prediction 3d98a753:
``kronos/BTCUSD.json``, ``chronos2/BTCUSD.json``, ``best/BTCUSD.json``, ``best/U.json``).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from objectives.metrics import METRICS
from objectives.registry import trading_config_name
from storage.best import MAXIMISED, Entry, choose, displaces
from storage.exceptions import StorageError
from storage.foreign import Foreign, parse
from storage.names import config_name
from storage.record import Record
from storage.store import Publish, read_record, read_stored, record_path, write_record
from tests.conftest import launch_fake, run_cli

T0 = "2026-11-27T03:00:00+00:00"
T1 = "2026-11-27T04:00:00+00:00"
WINDOWS = {"val_window": 20, "test_window": 20, "forecast_horizon": 1}


def trading_kronos(symbol: str = "BTCUSD") -> dict:
    """``hyperparams/kronos/<SYMBOL>.json`` as the trading code's extended sweep wrote it."""
    return {
        "symbol": symbol,
        "model": "kronos",
        "config": {
            "name": "kronos_opt_temp0.300_p0.75_s112_k24_clip2.00_ctx192",
            "temperature": 0.3, "top_p": 0.75, "top_k": 24, "sample_count": 112,
            "max_context": 192, "clip": 2.0,
        },
        "validation": {"price_mae": 461.298768749999, "pct_return_mae": 0.011455236536933333,
                       "latency_s": 3.2673689110015403},
        "test": {"price_mae": 2152.9953593749997, "pct_return_mae": 0.0359897287063021,
                 "latency_s": 3.2966254080020008},
        "windows": dict(WINDOWS),
        "metadata": {"source": "hyperparams_extended",
                     "extended_path": f"hyperparams_extended/kronos/{symbol}.json"},
    }  # fmt: skip


def trading_chronos2(symbol: str = "BTCUSD") -> dict:
    """``hyperparams/chronos2/<SYMBOL>.json``: a model this project does not tune."""
    return {
        "symbol": symbol,
        "model": "chronos2",
        "config": {"name": "ctx768_bs128_median_scale_meanstd_s128", "model_id": "amazon/chronos-2",
                   "device_map": "cuda", "context_length": 768, "batch_size": 128,
                   "quantile_levels": [0.1, 0.5, 0.9], "aggregation": "median",
                   "sample_count": 128, "scaler": "meanstd", "predict_kwargs": {}},
        "validation": {"price_mae": 1165.56136380088, "pct_return_mae": 0.010222334323947648,
                       "latency_s": 0.42768244698891067},
        "test": {"price_mae": 2691.2116027245042, "pct_return_mae": 0.023074169691285205,
                 "latency_s": 0.5875603570093517},
        "windows": dict(WINDOWS),
        "metadata": {"source": "chronos2_benchmark", "generated_at": "2025-11-12T08:44:52Z"},
    }  # fmt: skip


def trading_best(symbol: str = "BTCUSD", model: str = "toto") -> dict:
    """``hyperparams/best/<SYMBOL>.json`` as ``update_best_configs_by_return_mae.py`` wrote it:
    the trading code's model choice (``load_model_selection`` reads its ``model``)."""
    return {
        "symbol": symbol,
        "model": model,
        "config": {"name": "toto_opt_trimmed_mean_10_64_spb64", "num_samples": 64,
                   "aggregate": "trimmed_mean_10", "samples_per_batch": 64},
        "validation": {"price_mae": 1016.7232278245203, "pct_return_mae": 0.008935684487156922,
                       "latency_s": 1.1999504910054384},
        "test": {"price_mae": 2322.0997617788453, "pct_return_mae": 0.019888631769540352,
                 "latency_s": 1.455688428999565},
        "windows": dict(WINDOWS),
        "config_path": f"hyperparams/{model}/{symbol}.json",
        "metadata": {
            "source": "update_best_configs_by_return_mae",
            "selection_metric": "test_pct_return_mae",
            "selection_value": 0.019888631769540352,
            "kronos_pct_return_mae": 0.0359897287063021,
            "toto_pct_return_mae": 0.019888631769540352,
            "chronos2_pct_return_mae": 0.021204543101021815,
            "candidate_pct_return_mae": {"kronos": 0.0359897287063021,
                                         "toto": 0.019888631769540352,
                                         "chronos2": 0.021204543101021815},
            "improvement_pct": 6.205799036613298,
        },
    }  # fmt: skip


def trading_model_record(model: str, symbol: str) -> dict:
    """A trading-code record in a model folder this project writes to (same shape)."""
    record = copy.deepcopy(trading_best(symbol, model))
    del record["config_path"]
    record["metadata"] = {"source": "hyperparams_extended"}
    return record


def ours(
    model: str,
    symbol: str,
    val: float,
    *,
    beats_naive: bool | None = None,
    created_at: str = T0,
    trial: int = 0,
    fingerprint: str = "fp-1",
) -> Record:
    """A record of this project, in the shape of an export."""
    scores: dict = {"price_mae": val, "return_mae": val / 100, "pct_return_mae": val / 100,
                    "latency_s": 0.01}  # fmt: skip
    if beats_naive is not None:
        scores["beats_naive"] = beats_naive
    return Record.from_json(
        {
            "symbol": symbol,
            "model": model,
            "config": {"name": f"{model}_opt_x"},
            "validation": scores,
            "test": dict(scores),
            "windows": dict(WINDOWS),
            "metadata": {
                "source": "optimise (optuna)",
                "study_name": f"{model}:{symbol}:v20-t20-h1:trading",
                "trial_number": trial,
                "objective": "price_mae",
                "data_fingerprint": fingerprint,
                "created_at": created_at,
            },
        }
    )


def seed(store: Path, files: dict[str, dict]) -> dict[str, bytes]:
    """Write the trading code's files (as its ``json.dump(payload, fp, indent=2)`` does)."""
    written = {}
    for relative, payload in files.items():
        path = store / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=2))
        written[relative] = path.read_bytes()
    return written


def contents(store: Path, files: dict[str, bytes]) -> dict[str, bytes]:
    return {relative: (store / relative).read_bytes() for relative in files}


def copies(folder: Path) -> list[Path]:
    return sorted((folder / ".replaced").glob("*.json"))


# --- reading ------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [trading_kronos, trading_chronos2, trading_best])
def test_the_trading_codes_records_are_read_as_foreign_not_unreadable(make) -> None:
    stored = parse(json.dumps(make(), indent=2))
    assert isinstance(stored, Foreign) and stored.record is None
    assert stored.source == make()["metadata"]["source"]
    assert stored.describe().startswith(f"foreign record (source {stored.source}, model ")
    assert stored.value("return_mae") == make()["validation"]["pct_return_mae"]
    assert stored.windows is not None and stored.windows.val_window == 20


def test_a_damaged_record_of_ours_stays_unreadable_and_a_non_record_is_not_foreign() -> None:
    damaged = copy.deepcopy(ours("toto", "AAPL", 1.0).to_json())
    damaged["validation"]["price_mae"] = "1.0"  # type: ignore[index]
    with pytest.raises(StorageError, match="validation.price_mae is a string"):
        parse(json.dumps(damaged))
    with pytest.raises(StorageError, match="not a record: no config object"):
        parse(json.dumps({"symbol": "BTCUSD", "close_policy": "KEEP_OPEN"}))  # close_policy/


def test_read_record_names_a_foreign_file_as_such(tmp_path: Path) -> None:
    seed(tmp_path, {"kronos/BTCUSD.json": trading_kronos()})
    assert isinstance(read_stored(tmp_path, "kronos", "BTCUSD"), Foreign)
    with pytest.raises(StorageError, match="a foreign record .source hyperparams_extended"):
        read_record(tmp_path, "kronos", "BTCUSD")


# --- the pure best/ choice ----------------------------------------------------------------------


def test_foreign_records_are_listed_not_compared_by_default() -> None:
    entries = [
        Entry.of("chronos2", parse(json.dumps(trading_chronos2()))),
        Entry.of("kronos", parse(json.dumps(trading_kronos()))),
        Entry("toto", record=ours("toto", "BTCUSD", 5000.0)),  # far worse than both
    ]
    chosen = choose(entries, "hyperparams")
    assert chosen is not None and chosen.model == "toto"
    selection = chosen.metadata.best_selection
    assert selection is not None
    assert [c.model for c in selection.compared] == ["toto"]
    assert [(e.model, e.study_name) for e in selection.excluded] == [
        ("chronos2", None),
        ("kronos", None),
    ]
    assert all("another protocol" in e.reason for e in selection.excluded)
    assert "source hyperparams_extended" in selection.excluded[1].reason
    # the trading code's keys
    assert chosen.config_path == "hyperparams/toto/BTCUSD.json"
    assert chosen.metadata.selection_metric == "validation_price_mae"
    assert chosen.metadata.selection_value == 5000.0
    assert chosen.metadata.candidate_pct_return_mae == {"toto": 50.0}


def test_a_foreign_record_in_our_schema_is_compared_when_comparable() -> None:
    theirs = ours("kronos", "BTCUSD", 1.0).to_json()
    theirs["metadata"]["source"] = "someone else"  # type: ignore[index]
    stored = parse(json.dumps(theirs))
    assert isinstance(stored, Foreign) and stored.record is not None
    chosen = choose(
        [Entry.of("kronos", stored), Entry("toto", record=ours("toto", "BTCUSD", 2.0))], "s"
    )
    assert chosen is not None and chosen.model == "kronos"


def test_a_maximised_metric_is_chosen_highest() -> None:
    assert {m.name for m in METRICS.values() if m.direction == "maximize"} == MAXIMISED
    records = []
    for model, accuracy in (("kronos", 0.4), ("toto", 0.7)):
        raw = ours(model, "AAPL", 1.0).to_json()
        raw["metadata"]["objective"] = "direction_accuracy"  # type: ignore[index]
        raw["validation"]["metrics"] = {"direction_accuracy": accuracy}  # type: ignore[index]
        records.append(Entry(model, record=Record.from_json(raw)))
    chosen = choose(records, "s")
    assert chosen is not None and chosen.model == "toto"


def test_displacement_rules() -> None:
    loser = ours("toto", "AAPL", 1.0, beats_naive=False, trial=2)
    winner = ours("toto", "AAPL", 1.0, beats_naive=True, trial=3)
    other = ours("kronos", "AAPL", 9.0, beats_naive=True)
    foreign = parse(json.dumps(trading_best("AAPL")))
    assert displaces(loser, None, replace_foreign=False) is None  # nothing to displace
    assert "does not beat naive" in str(displaces(loser, other, replace_foreign=False))
    assert displaces(loser, loser, replace_foreign=False) is None  # the same winner, rewritten
    assert displaces(winner, other, replace_foreign=False) is None
    assert "--replace-foreign" in str(displaces(winner, foreign, replace_foreign=False))
    assert displaces(winner, foreign, replace_foreign=True) is None
    assert "does not beat naive" in str(displaces(loser, foreign, replace_foreign=True))


# --- the store on disk --------------------------------------------------------------------------


def test_write_record_leaves_foreign_files_intact_and_lists_them(tmp_path: Path) -> None:
    files = seed(
        tmp_path,
        {
            "kronos/BTCUSD.json": trading_kronos(),
            "chronos2/BTCUSD.json": trading_chronos2(),
            "best/BTCUSD.json": trading_best(),
            "toto/BTCUSD.json": trading_model_record("toto", "BTCUSD"),
        },
    )
    written = write_record(tmp_path, ours("toto", "BTCUSD", 100.0, beats_naive=True))
    assert contents(tmp_path, files) == files  # nothing of theirs touched
    assert not written.live and written.replaced is None and written.best_replaced is None
    assert written.study_path is not None
    assert Record.from_json(written.study_path.read_bytes()).model == "toto"
    notes = "\n".join(written.notes)
    for relative in files:
        assert f"{tmp_path / relative}: foreign record (source " in notes
    assert notes.count(str(tmp_path / "toto/BTCUSD.json")) == 1  # one line per file
    assert "pass --replace-foreign" in notes
    assert not (tmp_path / "toto" / ".replaced").exists()


def test_replace_foreign_keeps_a_copy_beside_each_replaced_file(tmp_path: Path) -> None:
    theirs = {"best/BTCUSD.json": trading_best(),
              "toto/BTCUSD.json": trading_model_record("toto", "BTCUSD")}  # fmt: skip
    files = seed(tmp_path, theirs)
    written = write_record(
        tmp_path, ours("toto", "BTCUSD", 100.0, beats_naive=True), Publish(replace_foreign=True)
    )
    assert written.live
    for relative, folder in (("toto/BTCUSD.json", "toto"), ("best/BTCUSD.json", "best")):
        [kept] = copies(tmp_path / folder)
        assert kept.read_bytes() == files[relative]
        assert kept.name.startswith("BTCUSD.") and kept.name.endswith("Z.json")
        [line] = [n for n in written.notes if n.startswith(str(tmp_path / relative))]
        assert "replaced the foreign record" in line and str(kept) in line
    assert read_record(tmp_path, "best", "BTCUSD").model == "toto"
    assert read_record(tmp_path, "toto", "BTCUSD").metadata.study_name.startswith("toto:")


def test_a_naive_losing_record_never_displaces_another_in_best(tmp_path: Path) -> None:
    write_record(tmp_path, ours("kronos", "AAPL", 5.0, beats_naive=True, created_at=T0))
    before = (tmp_path / "best/AAPL.json").read_bytes()
    written = write_record(tmp_path, ours("toto", "AAPL", 1.0, beats_naive=False, created_at=T1))
    assert (tmp_path / "best/AAPL.json").read_bytes() == before  # kronos stays the choice
    assert written.live  # toto's own record is written; only best/ is protected
    assert any("does not beat naive on validation" in n for n in written.notes)
    # ...not even over a foreign choice, with --replace-foreign
    files = seed(tmp_path / "other", {"best/AAPL.json": trading_best("AAPL")})
    loser = ours("toto", "AAPL", 1.0, beats_naive=False)
    write_record(tmp_path / "other", loser, Publish(replace_foreign=True))
    assert contents(tmp_path / "other", files) == files
    assert copies(tmp_path / "other" / "best") == []
    # a record that beats naive displaces it
    write_record(tmp_path, ours("toto", "AAPL", 1.0, beats_naive=True, created_at=T1, trial=1))
    assert read_record(tmp_path, "best", "AAPL").model == "toto"


# --- the command line, on a store seeded with the trading code's records --------------------------


def test_export_and_status_show_the_trading_codes_records_and_leave_them_intact(
    workdir: Path, sample_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = workdir / "store"
    files = seed(
        store,
        {
            "kronos/AAPL.json": trading_kronos("AAPL"),
            "chronos2/AAPL.json": trading_chronos2("AAPL"),
            "best/AAPL.json": trading_best("AAPL", "kronos"),
            "fake/AAPL.json": trading_model_record("fake", "AAPL"),
        },
    )
    # one trial: the fake's known-good setting, the naive forecast itself (ties never beat it)
    assert launch_fake(sample_data, 1) == 0
    out = capsys.readouterr().out
    assert contents(store, files) == files
    for relative in files:  # paths as given (--store store)
        assert f"store/{relative}: foreign record (source " in out
    assert "unreadable" not in out and "study None" not in out
    [own] = (store / "fake" / "studies").glob("*.json")
    assert Record.from_json(own.read_bytes()).validation.beats_naive is False
    assert run_cli("status", "--wide") == 0  # status names the live record, foreign
    out = capsys.readouterr().out
    row = next(x for x in out.splitlines() if x.startswith("fake:AAPL:"))
    assert row.rstrip().endswith("no: foreign")
    path = record_path(store, "fake", "AAPL").resolve()
    assert f"  {path}: foreign record (source hyperparams_extended" in out

    assert run_cli("export", "--model", "fake", "--symbols", "AAPL", "--data-dir", sample_data,
                   "--replace-foreign") == 0  # fmt: skip
    out = capsys.readouterr().out
    [kept] = copies(store / "fake")
    assert kept.read_bytes() == files["fake/AAPL.json"]
    kept = kept.relative_to(workdir)
    assert read_record(store, "fake", "AAPL").metadata.study_name == "fake:AAPL:v20-t20-h1:trading"
    assert [line for line in out.splitlines() if str(kept) in line] == [
        "store/fake/AAPL.json: replaced the foreign record (source hyperparams_extended, "
        f"model fake, config toto_opt_trimmed_mean_10_64_spb64); kept a copy at {kept}"
    ]
    # the trading code's model choice stays: the new winner does not beat naive
    assert (store / "best/AAPL.json").read_bytes() == files["best/AAPL.json"]
    assert copies(store / "best") == []
    assert "does not beat naive on validation" in out
    for relative in ("kronos/AAPL.json", "chronos2/AAPL.json"):
        assert (store / relative).read_bytes() == files[relative]


def test_config_names_follow_the_trading_codes_style() -> None:
    """The names of its real records, rebuilt from their settings (each model's rule is in its
    registry entry; others get the generic name)."""
    toto = trading_best()["config"]
    settings = {k: v for k, v in toto.items() if k != "name"}
    assert trading_config_name("toto", settings) == toto["name"]
    kronos = trading_kronos()["config"]
    settings = {k: v for k, v in kronos.items() if k != "name"}
    assert trading_config_name("kronos", settings) == kronos["name"]
    assert trading_config_name("toto", {"num_samples": 2048, "samples_per_batch": 512,
                                        "aggregate": "trimmed_mean_0.10"}) == (
        "toto_opt_trimmed_mean_0.10_2048_spb512"
    )  # fmt: skip
    assert trading_config_name("toto", {"num_samples": 2048}) is None  # not the trading keys
    assert trading_config_name("fake", {"drift": 0.001, "noise": 0.0}) is None
    assert config_name("fake", {"drift": 0.001, "noise": 0.0}) == "fake_opt_drift0.001_noise0"
