"""``--select default-if-insignificant``: the trading code's default is exported when the
winner's validation edge over it is not significant, and the record says so and is the
default's throughout (config, validation and test scores on the same targets)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from objectives.bars import load_bars
from objectives.evaluator import evaluate, load_backend
from objectives.windows import WindowSpec
from storage.names import named_config
from storage.record import Paired, Record
from studies.context import StudyContext
from studies.selection import choose
from tests.conftest import launch_fake, run_cli
from tests.storage.test_record import minimal

METHOD = "DM-HLN two-sided t(n-1), NW (Bartlett) lags h-1 = 0"


def _with_vs_default(ratio: float, stat: float | None, p: float) -> Record:
    record = Record.from_json(json.dumps(minimal()))
    paired = Paired(mae_ratio=ratio, dm_stat=stat, p_value=p, method=METHOD)
    return dataclasses.replace(
        record, validation=dataclasses.replace(record.validation, vs_default=paired)
    )


@pytest.mark.parametrize(
    ("ratio", "stat", "p", "chosen", "why"),
    [
        (0.8, -3.1, 0.004, "winner", "lower than the trading code's default's with p = 0.004"),
        (0.8, -1.2, 0.24, "default", "not significant (p = 0.24 >= 0.05)"),
        (1.1, 2.5, 0.02, "default", "not lower than the trading code's default's"),
        (0.9, None, 0.0, "winner", "p = 0 < 0.05"),  # every difference the same, negative
    ],
)
def test_the_rule_exports_the_default_unless_the_edge_is_significant(
    ratio: float, stat: float | None, p: float, chosen: str, why: str
) -> None:
    got, reason, p_value = choose(_with_vs_default(ratio, stat, p))
    assert (got, p_value) == (chosen, p) and why in reason and "\n" not in reason


def test_a_default_export_is_the_defaults_record(
    workdir: Path, sample_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """On the fake backend the winner's edge over the default is not significant: the record's
    config and scores are the default's, scored on the same targets under the study seed."""
    assert launch_fake(sample_data, 3, "--task", "levels",
                       "--select", "default-if-insignificant") == 0  # fmt: skip
    err = capsys.readouterr().err
    record = json.loads((workdir / "store" / "fake" / "AAPL.json").read_text())
    selection = record["metadata"]["selection"]
    assert selection["rule"] == "default-if-insignificant" and selection["chosen"] == "default"
    assert selection["p_value"] >= 0.05 and selection["reason"]
    lines = [line for line in err.splitlines() if "trading code's default settings" in line]
    assert len(lines) == 1 and lines[0].startswith("warning: fake:AAPL:v20-t20-h1: exported")
    assert "the winner (trial" not in err and "the winner's (trial" not in err  # its numbers
    assert run_cli("status", "--json") == 0
    assert json.loads(capsys.readouterr().out)[0]["exported"] == "default"
    assert run_cli("status") == 0
    assert lines[0] in capsys.readouterr().err.splitlines()
    backend = load_backend("fake")
    default = backend.space.trading_default()
    assert record["config"] == named_config("fake", default.to_config())
    ctx = StudyContext(backend, load_bars(sample_data, "AAPL"), WindowSpec())
    val = evaluate(ctx.search_evaluator, ctx.bars, ctx.windows.validation, default, 0).metrics
    test = evaluate(ctx.test_evaluator, ctx.bars, ctx.windows.test, default, 0).metrics
    assert record["validation"]["price_mae"] == val.price_mae
    assert record["test"]["price_mae"] == test.price_mae
    assert record["test"]["naive_price_mae"] == test.naive_price_mae
    assert "vs_default" not in record["validation"] and "vs_naive" in record["test"]
    assert record["metadata"]["objective_value"] == val.price_mae
    losses = record["metadata"]["forecasts"]["losses"]  # the defaults' losses, as recorded
    assert losses["default"][:20] == pytest.approx(list(val.per_target["price_mae"][:, 0, 0]))


def test_select_needs_the_default_comparison(
    workdir: Path, sample_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = launch_fake(sample_data, 2, "--select", "default-if-insignificant",
                       "--no-default-comparison")  # fmt: skip
    assert code == 2 and "drop --no-default-comparison" in capsys.readouterr().err
