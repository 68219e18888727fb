"""The command line end to end: launch, status, export, forecast, dashboard, checkpoint init."""

from __future__ import annotations

import json
import socket
import subprocess
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import cli_command, cli_env, run_cli
from tests.processes import CEILING_S, Child


def launch(model: str, checkpoint: Path | None, data: Path, n: int = 4, *extra: str) -> int:
    args = [
        "launch",
        "--model",
        model,
        "--symbols",
        "AAPL",
        "--data-dir",
        data,
        "--n-trials",
        n,
        "--no-progress",
        *extra,
    ]
    if checkpoint is not None:
        args += ["--checkpoint", checkpoint]
    return run_cli(*args)


def test_status_lists_each_study_with_its_results(workdir, sample_data, capsys):
    assert launch("fake", None, sample_data, 3) == 0
    capsys.readouterr()
    assert run_cli("status", "--wide") == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("fake:AAPL:v20-t20-h1"))
    assert " 3 " in line and "trial" in line and str(workdir / "store") in line


def test_status_on_a_missing_database_is_an_error(workdir, capsys):
    assert run_cli("status") == 2
    assert "no study database" in capsys.readouterr().err
    assert not (workdir / "studies.db").exists()


def test_export_writes_the_store_after_it_was_deleted(workdir, sample_data):
    assert launch("fake", None, sample_data, 3) == 0
    record = json.loads((workdir / "store/fake/AAPL.json").read_text())
    (workdir / "store/fake/AAPL.json").unlink()
    assert (
        run_cli(
            "export",
            "--model",
            "fake",
            "--symbols",
            "AAPL",
            "--data-dir",
            sample_data,
            "--store",
            workdir / "other",
        )
        == 0
    )
    assert json.loads((workdir / "other/fake/AAPL.json").read_text()) == record


def test_export_of_a_study_that_does_not_exist_is_an_error(workdir, sample_data, capsys):
    assert launch("fake", None, sample_data, 1) == 0
    capsys.readouterr()
    assert (
        run_cli(
            "export",
            "--model",
            "fake",
            "--symbols",
            "AAPL",
            "--data-dir",
            sample_data,
            "--val-window",
            "30",
        )
        == 2
    )
    assert "no study fake:AAPL:v30-t20-h1" in capsys.readouterr().err


def forecast_json(model: str, checkpoint: Path | None, data: Path, capsys, *source: str):
    args = [
        "forecast",
        "--model",
        model,
        "--symbol",
        "AAPL",
        "--data-dir",
        data,
        "--last",
        "3",
        "--json",
        *source,
    ]
    if checkpoint is not None:
        args += ["--checkpoint", checkpoint]
    capsys.readouterr()
    assert run_cli(*args) == 0
    return json.loads(capsys.readouterr().out)


def test_forecast_from_the_store_prints_the_last_bars_and_the_next(workdir, sample_data, capsys):
    assert launch("fake", None, sample_data, 3, "--task", "levels") == 0
    rows = forecast_json("fake", None, sample_data, capsys, "--from-store")
    assert len(rows) == 4
    keys = {"target_timestamp", "forecast", "band_quantiles", "band_low", "band_high", "actual",
            "last_close"}  # fmt: skip
    assert [set(r) for r in rows] == [keys] * 4
    assert all(r["band_quantiles"] == [0.1, 0.9] and r["band_low"] <= r["band_high"] for r in rows)
    assert rows[-1]["actual"] is None and rows[0]["actual"] is not None
    assert rows[-1]["target_timestamp"] == "2013-03-04T00:00:00Z"  # Friday's next: Monday
    assert rows[-1]["last_close"] == rows[-2]["actual"]


def test_forecast_from_a_trading_record_gives_every_column_of_its_task(
    workdir, sample_data, capsys
):
    assert launch("fake", None, sample_data, 3) == 0  # --task trading, the default
    rows = forecast_json("fake", None, sample_data, capsys, "--from-store")
    assert [r["column"] for r in rows[:4]] == ["close", "high", "low", "open"]
    assert len(rows) == 16 and {r["step"] for r in rows} == {1}
    bars = pd.read_csv(sample_data / "AAPL.csv")
    last = rows[-4:]  # the next, unseen bar: each column's last value is the file's last row
    assert [r["last"] for r in last] == [
        float(bars[c].iloc[-1]) for c in ("close", "high", "low", "open")
    ]
    assert all(r["actual"] is None for r in last)


def test_forecast_with_missing_params_names_them(workdir, sample_data, capsys):
    assert (
        run_cli(
            "forecast",
            "--model",
            "fake",
            "--symbol",
            "AAPL",
            "--data-dir",
            sample_data,
            "--param",
            "drift=0.01",
        )
        == 2
    )
    assert "missing noise" in capsys.readouterr().err


@pytest.mark.parametrize("model", ["fake", "toto", "kronos"])
def test_no_forecast_moves_when_the_bars_from_its_target_on_change(
    model, workdir, sample_data, checkpoints, capsys
):
    """No look-ahead: change every row >= i; the forecast for i must not move."""
    params = {
        "fake": ["drift=0.001", "noise=0.01"],
        "toto": ["num_samples=256", "aggregate=mean"],
        "kronos": [
            "temperature=0.7",
            "top_p=0.9",
            "top_k=0",
            "sample_count=8",
            "max_context=128",
            "clip=3.0",
        ],
    }[model]
    source = [x for p in params for x in ("--param", p)]
    checkpoint = checkpoints.get(model)
    frame = pd.read_csv(sample_data / "AAPL.csv")
    original = workdir / "a"
    original.mkdir()
    frame.to_csv(original / "AAPL.csv", index=False)
    changed = frame.astype({c: float for c in ("open", "high", "low", "close", "volume")})
    rng = np.random.default_rng(0)
    tail = slice(len(frame) - 3, None)  # target i = N-3 and every row after it
    for column in ("open", "close", "volume"):
        changed.loc[changed.index[tail], column] *= rng.uniform(0.5, 2.0, 3)
    rows = changed.index[tail]  # keep each bar valid: high and low bracket open and close
    changed.loc[rows, "high"] = changed.loc[rows, ["open", "close"]].max(axis=1) * 1.01
    changed.loc[rows, "low"] = changed.loc[rows, ["open", "close"]].min(axis=1) * 0.99
    (workdir / "b").mkdir()
    changed.to_csv(workdir / "b" / "AAPL.csv", index=False)
    for task in ("levels", "trading"):
        a = forecast_json(model, checkpoint, original, capsys, *source, "--task", task)
        b = forecast_json(model, checkpoint, workdir / "b", capsys, *source, "--task", task)
        per_origin = len(a) // 4  # --last 3: origins N-3 .. N; rows per (column, step)
        first = slice(0, per_origin)
        assert [r["forecast"] for r in a[first]] == [r["forecast"] for r in b[first]], task
        later = slice(per_origin, 2 * per_origin)  # origin N-2 sees the changed row N-3
        assert [r["forecast"] for r in a[later]] != [r["forecast"] for r in b[later]], task


def test_both_models_export_and_best_chooses_between_them(workdir, checkpoints, capsys):
    data = Path(__file__).resolve().parents[2] / "trainingdata"
    for model in ("toto", "kronos"):
        assert (
            run_cli(
                "launch",
                "--model",
                model,
                "--checkpoint",
                checkpoints[model],
                "--symbols",
                "AAPL",
                "--data-dir",
                data,
                "--n-trials",
                3,
                "--no-progress",
                "--task",
                "levels",
            )
            == 0
        )
    toto = json.loads((workdir / "store/toto/AAPL.json").read_text())
    kronos = json.loads((workdir / "store/kronos/AAPL.json").read_text())
    best = json.loads((workdir / "store/best/AAPL.json").read_text())
    winner = min((toto, kronos), key=lambda r: r["validation"]["price_mae"])
    selection = best["metadata"].pop("best_selection")
    assert best.pop("config_path") == f"store/{best['model']}/AAPL.json"
    assert best["metadata"].pop("selection_metric") == "validation_price_mae"
    assert best["metadata"].pop("selection_value") == best["validation"]["price_mae"]
    candidates = best["metadata"].pop("candidate_pct_return_mae")
    flat = {m: best["metadata"].pop(f"{m}_pct_return_mae") for m in candidates}
    assert flat == candidates and isinstance(best["metadata"].pop("improvement_pct"), float)
    if winner is kronos and winner["validation"]["beats_naive"] is False:
        # Kronos, finalised second, loses to naive: it never displaces Toto's record in best/
        assert best == toto and candidates == {"toto": toto["validation"]["return_mae"]}
        assert "does not beat naive on validation" in capsys.readouterr().out
        return
    assert best == winner
    assert {c["model"] for c in selection["compared"]} == {"toto", "kronos"}
    assert candidates == {r["model"]: r["validation"]["return_mae"] for r in (toto, kronos)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_dashboard_serves_the_storage_on_localhost(workdir, sample_data):
    assert launch("fake", None, sample_data, 2) == 0
    port = free_port()
    storage = f"sqlite:///{workdir / 'studies.db'}"
    with Child(
        cli_command("dashboard", "--storage", storage, "--port", port), env=cli_env()
    ) as server:
        server.wait_for_line(rf"on http://127\.0\.0\.1:{port}/dashboard")  # printed once bound
        url = f"http://127.0.0.1:{port}/api/studies"
        with urllib.request.urlopen(url, timeout=CEILING_S) as reply:
            studies = json.loads(reply.read())["study_summaries"]
        assert [s["study_name"] for s in studies] == ["fake:AAPL:v20-t20-h1:trading"]
        connections = subprocess.run(["ss", "-ltn"], capture_output=True, text=True).stdout
        listening = [line for line in connections.splitlines() if f":{port} " in line]
        assert listening and all("127.0.0.1:" in line for line in listening), server.describe()
        server.stop()


def test_checkpoint_init_refuses_to_overwrite_and_unknown_presets(tmp_path, capsys):
    out = tmp_path / "ck"
    assert run_cli("checkpoint", "init", "--arch", "toto", "--preset", "tiny", out) == 0
    assert run_cli("checkpoint", "init", "--arch", "toto", "--preset", "tiny", out) == 2
    assert "not empty" in capsys.readouterr().err
    assert run_cli("checkpoint", "init", "--arch", "toto", "--preset", "huge", tmp_path / "x") == 2
    assert "unknown toto preset" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_export_and_forecast_take_the_checkpoint_and_data_the_study_recorded(
    workdir, checkpoints, sample_data, capsys
):
    data = workdir / "mydata"
    data.mkdir()
    (data / "MSFT.csv").write_text((sample_data / "MSFT.csv").read_text())
    common = ["--model", "toto", "--symbols", "MSFT"]
    assert (
        run_cli("launch", *common, "--checkpoint", checkpoints["toto"], "--data-dir", data,
                "--n-trials", 3, "--no-progress")
        == 0
    )  # fmt: skip
    capsys.readouterr()
    assert run_cli("export", *common) == 0  # no --checkpoint, no --data-dir: the study's
    assert "differs from" not in capsys.readouterr().err
    assert run_cli("forecast", "--model", "toto", "--symbol", "MSFT", "--from-store", "--json") == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[-1]["actual"] is None and len(rows) == 6 * 4  # 6 origins x 4 columns
    other = workdir / "other-toto"
    assert (
        run_cli("checkpoint", "init", "--arch", "toto", "--preset", "tiny", "--seed", 1, other) == 0
    )
    capsys.readouterr()
    assert (
        run_cli("forecast", "--model", "toto", "--symbol", "MSFT", "--from-store",
                "--checkpoint", other, "--json")
        == 0
    )  # fmt: skip
    err = capsys.readouterr().err
    assert err.count("warning: --checkpoint") == 1 and "differs from the checkpoint" in err


def test_export_all_finalises_every_study_of_the_model_including_other_metrics_and_windows(
    workdir, sample_data, capsys
):
    base = ["launch", "--model", "fake", "--data-dir", sample_data, "--n-trials", 3]
    levels = ("--task", "levels")
    assert run_cli(*base, "--symbols", "AAPL", "--no-progress", *levels) == 0
    assert run_cli(*base, "--symbols", "AAPL", "--metric", "return_mae", "--no-progress",
                   *levels) == 0  # fmt: skip
    assert run_cli(*base, "--symbols", "MSFT", "--val-window", 30, "--no-progress") == 0
    capsys.readouterr()
    assert run_cli("export", "--model", "fake", "--all", "--store", "exported") == 0
    out = capsys.readouterr().out
    for name in (
        "fake:AAPL:v20-t20-h1 ",
        "fake:AAPL:v20-t20-h1:return_mae",
        "fake:MSFT:v30-t20-h1:trading",  # another task, exported with its own
    ):
        assert name in out
    assert (workdir / "exported" / "fake" / "MSFT.json").exists()
    # both AAPL studies keep their own records; the live one is the first exported, and the
    # other metric's study (an experiment) leaves it, saying so once
    line = "exported/fake/AAPL.json: kept the live record of study fake:AAPL:v20-t20-h1 trial"
    assert out.count(line) == 1 and "metric price_mae, this study's return_mae" in out
    assert "replaced the fake record" not in out
    record = json.loads((workdir / "exported" / "fake" / "AAPL.json").read_text())
    assert record["metadata"]["study_name"] == "fake:AAPL:v20-t20-h1"
    for stem in ("fake_AAPL_v20-t20-h1", "fake_AAPL_v20-t20-h1_return_mae"):
        assert (workdir / "exported" / "fake" / "studies" / f"{stem}.json").exists()
