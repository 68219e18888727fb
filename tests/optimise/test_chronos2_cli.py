"""Chronos-2 through the command line: checkpoint init, a short study, its exported record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli

DATA = Path(__file__).resolve().parents[2] / "trainingdata"


def test_init_launch_and_the_record_in_the_trading_codes_keys(workdir, capsys):
    checkpoint = workdir / "chronos2-tiny"
    assert run_cli("checkpoint", "init", "--arch", "chronos2", "--preset", "tiny", checkpoint) == 0
    assert sorted(p.name for p in checkpoint.iterdir()) == ["config.json", "model.safetensors"]
    assert run_cli("checkpoint", "init", "--arch", "chronos2", "--preset", "huge",
                   workdir / "x") == 2  # fmt: skip
    assert "unknown chronos2 preset 'huge'" in capsys.readouterr().err
    assert run_cli(
        "launch", "--model", "chronos2", "--checkpoint", checkpoint, "--symbols", "AAPL",
        "--data-dir", DATA, "--n-trials", 4, "--val-window", 5, "--test-window", 3,
        "--no-progress",
    ) == 0  # fmt: skip
    record = json.loads((workdir / "store/chronos2/AAPL.json").read_text())
    config = record["config"]
    assert record["model"] == "chronos2"
    # the trading code's 7-step path (tests/objectives/test_chronos2.py cites its line)
    assert record["windows"]["forecast_horizon"] == 7
    assert record["metadata"]["study_name"] == "chronos2:AAPL:v5-t3-h7:trading"
    assert set(config) == {"name", "context_length", "quantile_levels", "aggregation",
                           "use_multivariate"}  # fmt: skip
    assert config["context_length"] in (128, 256, 512, 1024, 2048)
    assert 0.5 in config["quantile_levels"] and isinstance(config["use_multivariate"], bool)
    mode = "multi" if config["use_multivariate"] else "uni"
    assert (
        config["name"] == f"chronos2_opt_ctx{config['context_length']}_"
        f"{config['aggregation']}_{mode}"
    )
    selection = record["metadata"]["selection"]
    assert "deterministic model" in selection["method"] and len(selection["seeds"]) == 1
    first = selection["first_pass_return_mae"]
    assert selection["confirmed_return_mae"] == first  # the one draw is the first pass
    # strict JSON (no NaN): a deterministic model's confirmation spread is exactly 0
    text = (workdir / "store/chronos2/AAPL.json").read_text()
    json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in the record"))
    assert selection["confirmed_return_mae_se"] == 0.0
    assert all(c["confirmed_return_mae_se"] == 0.0 for c in selection["candidates"])
