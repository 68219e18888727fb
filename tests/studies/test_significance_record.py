"""The record's paired tests (``vs_naive``, ``vs_default``) recompute from its own per-target
forecasts and losses, the defaults are the trading code's scored on the winner's draws, and
``launch``, ``export`` and ``status`` say when a test edge over naive is not significant."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from objectives.bars import load_bars
from objectives.evaluator import evaluate, load_backend, load_space
from objectives.kronos.space import KronosSpace
from objectives.metrics import outcome
from objectives.settings import config_key
from objectives.tasks import LEVELS, TASKS, Task
from objectives.toto.space import TotoSettings
from objectives.windows import WindowSpec
from optimise.commands import edge_warning
from optimise.status import _p_values, paired_line
from storage.database import Database
from storage.record import Paired, Record, Scores
from studies.context import StudyContext
from studies.finalise import FinaliseSettings, _paired_note, finalise
from studies.open import open_study
from studies.picture import _paired_title, render
from studies.worker import WorkerSettings, run_study
from tests.conftest import launch_fake, run_cli
from tests.objectives.test_significance import reference_dm

TRADING = Task("trading", TASKS["trading"].columns)
#: fake settings besides the known-good (naive) one, so that the winner is not naive
FAKE_TRIALS = [{"drift": 0.004, "noise": 0.0}, {"drift": -0.003, "noise": 0.0},
               {"drift": 0.001, "noise": 0.004}]  # fmt: skip
EDGE = "test edge over naive is not significant"


def finalised(
    workdir: Path,
    data: Path,
    model: str,
    task: Task,
    metric: str,
    trials: list[dict],
    *,
    checkpoint: Path | None = None,
    n_trials: int | None = None,
    horizon: int = 1,
) -> tuple[StudyContext, Record]:
    """A study of ``model`` on AAPL run with ``trials`` enqueued, finalised (2 candidates on 2
    seed sets), and its record as the store holds it."""
    backend = load_backend(model, checkpoint=None if checkpoint is None else str(checkpoint))
    bars = load_bars(data, "AAPL")
    ctx = StudyContext(backend, bars, WindowSpec(horizon=horizon), metric=metric, task=task,
                       seed=5)  # fmt: skip
    db = Database.open("sqlite:///studies.db")
    study = open_study(db.optuna, ctx, warm_start=False)
    for params in trials:
        study.enqueue_trial(params)
    run_study(study, ctx, db.ledger, n_trials or len(trials) + 1, WorkerSettings(progress=False))
    done = finalise(study, ctx, db.ledger, workdir / "store", "sqlite:///studies.db",
                    FinaliseSettings(candidates=2, draws=2))  # fmt: skip
    stored = Record.from_json(done.path.read_bytes())
    assert stored == done.record
    return ctx, stored


def halves(values: tuple[float, ...], split: int) -> tuple[np.ndarray, np.ndarray]:
    array = np.asarray(values, dtype=np.float64)
    return array[:split], array[split:]


def check_paired(paired: Paired | None, loss: np.ndarray, other: np.ndarray, h: int) -> None:
    """``paired`` is the DM-HLN test of ``loss`` against ``other``, recomputed from scratch."""
    assert paired is not None
    assert paired.mae_ratio == pytest.approx(loss.mean() / other.mean(), rel=1e-12)
    d = loss - other
    if np.ptp(d) == 0:  # identical errors (the winner is that forecast): no test
        assert paired.dm_stat is None and paired.p_value == (1.0 if d[0] == 0 else 0.0)
        return
    stat, p = reference_dm(loss, other, h)
    assert paired.dm_stat == pytest.approx(stat, rel=1e-9)
    assert paired.p_value == pytest.approx(p, rel=1e-7, abs=1e-14)
    assert paired.method.startswith("DM-HLN two-sided t(n-1)")


def recompute_from_forecasts(record: Record, metric: str) -> dict[str, np.ndarray]:
    """Each target's loss from the record's close forecasts and actuals (one step, close)."""
    f = record.metadata.forecasts
    assert f is not None and f.default is not None
    actual, naive = np.asarray(f.actual), np.asarray(f.naive)
    of = {"forecast": np.asarray(f.forecast), "naive": naive, "default": np.asarray(f.default)}
    if metric == "price_mae":
        return {k: np.abs(v - actual) for k, v in of.items()}
    assert metric == "return_mae"
    return {k: np.abs(v / naive - actual / naive) for k, v in of.items()}


def check_record(record: Record, losses: dict[str, np.ndarray], horizon: int) -> None:
    """Both windows' ``vs_naive`` and ``vs_default`` are the tests of these losses."""
    f = record.metadata.forecasts
    assert f is not None
    split = f.validation_count
    for window, scores in ((0, record.validation), (1, record.test)):
        parts = {k: halves(tuple(v), split)[window] for k, v in losses.items()}
        check_paired(scores.vs_naive, parts["forecast"], parts["naive"], horizon)
        check_paired(scores.vs_default, parts["forecast"], parts["default"], horizon)


@pytest.mark.parametrize(
    ("task", "metric"), [(LEVELS, "price_mae"), (Task("trading", ("close",)), "return_mae")]
)
def test_the_paired_tests_recompute_from_the_records_forecasts(
    workdir: Path, sample_data: Path, task: Task, metric: str
) -> None:
    ctx, record = finalised(workdir, sample_data, "fake", task, metric, FAKE_TRIALS)
    assert record.config["noise"] != 0 or record.config["drift"] != 0  # not the naive forecast
    losses = recompute_from_forecasts(record, metric)
    f = record.metadata.forecasts
    assert f is not None and f.losses is not None and f.losses.metric == metric
    for key in ("forecast", "naive", "default"):
        np.testing.assert_allclose(getattr(f.losses, key), losses[key], rtol=1e-9, atol=1e-15)
    check_record(record, losses, 1)
    # the test window's losses average to the record's test scores
    split = f.validation_count
    assert losses["forecast"][split:].mean() == pytest.approx(record.test.metric(metric))
    assert losses["naive"][split:].mean() == pytest.approx(record.test.naive(metric))
    # the default is the trading code's, scored on the winner's seeds
    default = ctx.backend.space.trading_default()
    again = evaluate(ctx.test_evaluator, ctx.bars, ctx.windows.test, default, ctx.seed)
    assert list(f.default[split:]) == [float(x) for x in again.forecast]


@pytest.mark.parametrize("metric", ["return_mae", "direction_accuracy"])
def test_a_trading_record_over_four_columns_recomputes_from_its_losses(
    workdir: Path, sample_data: Path, metric: str
) -> None:
    ctx, record = finalised(workdir, sample_data, "fake", TRADING, metric, FAKE_TRIALS,
                            horizon=3)  # fmt: skip
    f = record.metadata.forecasts
    assert f is not None and f.losses is not None and f.default is not None
    losses = {k: np.asarray(getattr(f.losses, k)) for k in ("forecast", "naive", "default")}
    check_record(record, losses, 3)
    assert "lags h-1 = 2" in record.test.vs_naive.method  # type: ignore[union-attr]
    split = f.validation_count
    if metric == "direction_accuracy":  # losses are misses; the score is the hit rate
        assert 1 - losses["forecast"][split:].mean() == pytest.approx(record.test.metric(metric))
        assert 1 - losses["naive"][split:].mean() == pytest.approx(record.test.naive(metric))
        return
    assert losses["forecast"][split:].mean() == pytest.approx(record.test.metric(metric))
    assert losses["naive"][split:].mean() == pytest.approx(record.test.naive(metric))
    # the default's losses: its paths scored from scratch, the mean over columns and steps
    default = ctx.backend.space.trading_default()
    paths = evaluate(ctx.test_evaluator, ctx.bars, ctx.windows.test, default, ctx.seed).paths
    assert paths is not None
    errors = outcome(ctx.bars, paths).return_errors()  # (W, C, H)
    np.testing.assert_allclose(losses["default"][split:], errors.mean(axis=(1, 2)), rtol=1e-12)


@pytest.mark.parametrize("model", ["toto", "kronos"])
def test_real_tiny_models_records_recompute_from_their_forecasts(
    workdir: Path,
    sample_data: Path,
    checkpoints: dict[str, Path],
    model: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Toto and Kronos (tiny random weights), levels: close, one step, price MAE. Kronos's
    first trial (the trading code's best) and its defaults are made cheap here (8 and 4 paths of
    64 bars, not 192 of 232); the real defaults are checked below."""
    trials: list[dict] = [{"num_samples": 128, "aggregate_family": "quantile", "quantile_q": 0.4}]
    if model == "kronos":
        cheap = {"temperature": 0.152, "top_p": 1.0, "top_k": 20, "sample_count": 8,
                 "max_context": 64, "clip": 1.85}  # fmt: skip
        monkeypatch.setattr(KronosSpace, "trading_best", cheap)
        monkeypatch.setattr(KronosSpace, "trading_defaults",
                            {**cheap, "temperature": 1.0, "sample_count": 4})  # fmt: skip
        trials = []
    ctx, record = finalised(
        workdir, sample_data, model, LEVELS, "price_mae", trials, checkpoint=checkpoints[model]
    )
    check_record(record, recompute_from_forecasts(record, "price_mae"), 1)
    assert record.test.vs_naive is not None and record.test.vs_default is not None
    default = ctx.backend.space.trading_default()
    if config_key(record.settings) == config_key(default):  # Toto's first trial: the defaults
        assert (record.test.vs_default.mae_ratio, record.test.vs_default.p_value) == (1.0, 1.0)
    else:
        assert record.test.vs_default.dm_stat is not None
    f = record.metadata.forecasts
    assert f is not None and f.default is not None
    again = evaluate(ctx.test_evaluator, ctx.bars, ctx.windows.test, default, ctx.seed)
    assert list(f.default[f.validation_count :]) == [float(x) for x in again.forecast]


def test_the_defaults_are_the_trading_codes() -> None:
    """../shared/CONSUMER.md: Toto 3072 / 384 / trimmed_mean_10 (3072 runs as written),
    Kronos T 0.152, top_p 0.83, top_k 20, sample_count 192, max_context 232, clip 1.85."""
    toto = load_space("toto").trading_default()
    assert isinstance(toto, TotoSettings)
    assert (toto.num_samples, toto.aggregate.spec) == (3072, "trimmed_mean_0.10")
    kronos = load_space("kronos").trading_default()
    assert kronos.to_config() == {
        "temperature": 0.152, "top_p": 0.83, "top_k": 20, "sample_count": 192,
        "max_context": 232, "clip": 1.85,
    }  # fmt: skip


def test_an_insignificant_test_edge_says_so_once_everywhere(
    workdir: Path, sample_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # one trial: the fake's known-good setting, the naive forecast itself: no edge at all
    assert launch_fake(sample_data, 1) == 0
    assert capsys.readouterr().err.count(EDGE) == 1
    record = Record.from_json((workdir / "store" / "fake" / "AAPL.json").read_bytes())
    assert record.test.vs_naive is not None and record.test.vs_naive.p_value == 1.0
    assert record.test.vs_default is not None
    assert run_cli("status", "--wide") == 0
    out, err = capsys.readouterr()
    assert err.count(EDGE) == 1
    header = next(line for line in out.splitlines() if line.startswith("study"))
    assert "test p naive/default" in header
    row = next(line for line in out.splitlines() if line.startswith("fake:AAPL"))
    assert f"1/{record.test.vs_default.p_value:.2g}" in row
    assert "paired: validation vs naive ratio 1 p 1" in out
    assert run_cli("export", "--model", "fake", "--symbols", "AAPL", "--data-dir", sample_data) == 0
    assert capsys.readouterr().err.count(EDGE) == 1
    # the dashboard note and the picture show them
    note = _paired_note(record)
    assert "### Paired tests (DM-HLN" in note and "| test | trading default |" in note
    assert "not significant at 5%" in note
    assert "vs trading default" in _paired_title(record) and "p 1" in _paired_title(record)
    assert render(record).startswith(b"\x89PNG")
    # a record made before the paired tests still reads, draws and says nothing of them
    raw = json.loads((workdir / "store" / "fake" / "AAPL.json").read_text())
    for window in ("validation", "test"):
        assert set(raw[window]["vs_naive"]) == {"mae_ratio", "dm_stat", "p_value", "method"}
        del raw[window]["vs_naive"], raw[window]["vs_default"]
    del raw["metadata"]["forecasts"]["default"], raw["metadata"]["forecasts"]["losses"]
    old = Record.from_json(json.dumps(raw))
    assert old.test.vs_naive is None and old.metadata.forecasts.default is None  # type: ignore[union-attr]
    assert _paired_note(old) == "" and _paired_title(old) == ""
    assert render(old).startswith(b"\x89PNG")
    assert edge_warning("s", 1, "price_mae", old.test) is None


def test_a_significant_edge_gives_no_warning_and_old_records_none_either() -> None:
    significant = Paired(mae_ratio=0.8, dm_stat=-3.1, p_value=0.006, method="m")
    test = Scores(price_mae=1.0, return_mae=0.1, latency_s=0.1, vs_naive=significant)
    assert edge_warning("s", 1, "price_mae", test) is None
    worse = dataclasses.replace(significant, mae_ratio=1.25, dm_stat=3.1)
    said = edge_warning("s", 1, "price_mae", Scores(
        price_mae=1.0, return_mae=0.1, latency_s=0.1, vs_naive=worse)) or ""  # fmt: skip
    assert "is significantly worse than naive on the test window" in said and EDGE not in said
    unclear = dataclasses.replace(worse, p_value=0.4)  # worse, but not significantly
    assert EDGE in (edge_warning("s", 1, "price_mae", Scores(
        price_mae=1.0, return_mae=0.1, latency_s=0.1, vs_naive=unclear)) or "")  # fmt: skip
    certain = Paired(mae_ratio=0.9, dm_stat=None, p_value=0.0, method="m")  # constant edge
    assert certain.significant_edge() and not Paired(
        mae_ratio=None, dm_stat=None, p_value=1.0, method="m").significant_edge()  # fmt: skip
    old = Scores(price_mae=1.0, return_mae=0.1, latency_s=0.1)  # a record before the tests
    assert edge_warning("s", 1, "price_mae", old) is None
    winner = {"validation": old.to_json(), "test": old.to_json()}
    assert _p_values(winner) == "-" and paired_line("s", winner) is None


def test_without_the_default_comparison_the_record_has_no_vs_default(
    workdir: Path, sample_data: Path
) -> None:
    assert launch_fake(sample_data, 2, "--no-default-comparison") == 0
    record = Record.from_json((workdir / "store" / "fake" / "AAPL.json").read_bytes())
    assert record.test.vs_naive is not None and record.test.vs_default is None
    f = record.metadata.forecasts
    assert f is not None and f.default is None and f.losses is not None
    assert f.losses.default is None and len(f.losses.naive) == 40
