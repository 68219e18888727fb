"""A blocked validation protocol end to end on the fake backend: its name, identity, pruning
reports per chunk inside each block, the record's ``windows`` and ``status``."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

from objectives.bars import load_bars
from objectives.evaluator import evaluate, load_backend
from objectives.windows import WindowSpec
from studies.context import StudyContext
from studies.objective import objective
from tests.conftest import launch_fake, run_cli

BLOCKED = ("--task", "levels", "--val-blocks", "3", "--val-step", "60")
NAME = "fake:AAPL:v20x3s60-t20-h1"


def test_pruning_reports_after_each_chunk_of_each_block(sample_data: Path) -> None:
    """Reports at the end of every chunk (7 targets per block of 10: 7, 3) but the last; the
    running values are the metric of the targets so far and the trial's value that of every
    target of every block."""
    spec = WindowSpec(val_window=10, val_blocks=3, val_step=25)
    ctx = StudyContext(load_backend("fake"), load_bars(sample_data, "AAPL"), spec, prune_chunk=7)
    study = optuna.create_study(pruner=optuna.pruners.NopPruner())
    trial = study.ask()
    value = objective(trial, ctx)
    study.tell(trial, value)
    reported = study.trials[0].intermediate_values
    steps = spec.protocol.steps(ctx.windows.validation_blocks, 7)
    assert [len(s) for s in steps] == [7, 3] * 3 and sorted(reported) == list(range(5))
    settings = ctx.backend.space.from_config(study.trials[0].user_attrs["config"])
    whole = evaluate(ctx.search_evaluator, ctx.bars, ctx.windows.validation, settings, 0)
    assert value == whole.metrics.price_mae
    for step in range(5):
        done = sum(len(s) for s in steps[: step + 1])
        prefix = ctx.windows.validation[:done]
        running = evaluate(ctx.search_evaluator, ctx.bars, prefix, settings, 0).metrics
        assert reported[step] == running.price_mae
    assert len(whole.forecast) == 30 and ctx.windows.validation_end <= ctx.windows.test[0]


def test_a_blocked_study_is_named_recorded_and_shown(
    workdir: Path, sample_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert launch_fake(sample_data, 12, *BLOCKED, "--prune", "on") == 0
    study = optuna.load_study(study_name=NAME, storage="sqlite:///studies.db")
    assert study.user_attrs["windows"] == {
        "val_window": 20, "test_window": 20, "horizon": 1, "min_context": 128,
        "val_blocks": 3, "val_step": 60,
    }  # fmt: skip
    record = json.loads((workdir / "store" / "fake" / "AAPL.json").read_text())
    windows = record["windows"]
    assert windows["kind"] == "blocked" and windows["val_blocks"] == 3
    assert windows["val_step"] == 60 and len(windows["blocks"]) == 3
    bars = load_bars(sample_data, "AAPL")
    stamp = [str(t.astype("datetime64[s]")) + "Z" for t in bars.timestamps]
    n = len(bars)
    firsts = [n - 20 - 20 - 120, n - 20 - 20 - 60, n - 20 - 20]
    assert [b["first"] for b in windows["blocks"]] == [stamp[i] for i in firsts]
    assert [b["last"] for b in windows["blocks"]] == [stamp[i + 19] for i in firsts]
    assert windows["blocks"][-1]["last"] == record["metadata"]["validation_end"]
    assert len(record["metadata"]["forecasts"]["timestamps"]) == 60 + 20  # every target
    capsys.readouterr()
    assert run_cli("status") == 0
    out = capsys.readouterr().out
    assert NAME in out and "validation 3 blocks x 20, step 60 (rolling origin" in out
    assert run_cli("status", "--json") == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert entry["protocol"]["kind"] == "blocked" and entry["protocol"]["val_step"] == 60


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--val-step", "40"), "--val-step needs --val-blocks"),
        (("--val-blocks", "0"), "--val-blocks must be at least 1"),
        (("--val-blocks", "2", "--val-step", "10"), "blocks would overlap"),
        (("--val-blocks", "40", "--val-step", "20"), "too few rows"),
    ],
)
def test_bad_protocol_flags_end_with_one_line_and_exit_2(
    workdir: Path, sample_data: Path, capsys: pytest.CaptureFixture[str], extra, message
) -> None:
    code = launch_fake(sample_data, 2, "--task", "levels", *extra)
    err = capsys.readouterr().err
    assert code == 2 and message in err
    assert not (workdir / "store").exists()
