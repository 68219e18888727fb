"""The model registry (``objectives/registry.py``): every registered model's spec is what its
model does. For each: its command-line choices, ``checkpoint init`` of a random checkpoint,
loading it, its search space, and its capabilities checked against real forecasts."""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from objectives.bars import load_bars
from objectives.evaluator import load_backend, load_space
from objectives.exceptions import DataError
from objectives.registry import (
    BACKENDS,
    BackendSpec,
    flat_selection_models,
    names,
    source_keys,
    spec,
    specs,
)
from objectives.tasks import LEVELS, TRADING, resolve_horizon
from optimise.parser import build_parser
from tests.conftest import REPO, SAMPLE_DATA, run_cli

#: the project's models (tests register the double ``fake`` besides them)
MODELS = tuple(name for name in BACKENDS if name != "fake")


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def choices(parser: argparse.ArgumentParser, option: str) -> list[str]:
    (action,) = [a for a in parser._actions if option in a.option_strings]
    return list(action.choices or [])


@pytest.fixture(scope="module")
def random_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each model's tiny random checkpoint, written by ``optimise checkpoint init``."""
    root = tmp_path_factory.mktemp("registry-checkpoints")
    for name in MODELS:
        assert run_cli("checkpoint", "init", "--arch", name, "--preset", "tiny", root / name) == 0
    return {name: root / name for name in MODELS}


def test_the_registry_lists_the_three_models_in_the_trading_codes_order() -> None:
    assert MODELS == ("kronos", "toto", "chronos2")
    assert [s.name for s in specs() if s.name in MODELS] == list(MODELS)
    assert all(isinstance(spec(name), BackendSpec) for name in MODELS)


def test_an_unknown_model_is_one_line_naming_the_choices() -> None:
    with pytest.raises(DataError, match=r"unknown model 'prophet'; choose from kronos, toto"):
        spec("prophet")


def test_every_spec_is_a_command_line_choice() -> None:
    commands = subparsers(build_parser())
    for command in ("launch", "export", "forecast", "status"):
        assert choices(commands[command], "--model") == sorted(names()), command
    init = subparsers(commands["checkpoint"])["init"]
    archs = choices(init, "--arch")
    assert archs == sorted(s.name for s in specs() if s.checkpoints is not None)
    assert set(MODELS) <= set(archs)
    launch = commands["launch"]
    for key in source_keys()[1:]:  # each extra source is an option, with its model's help
        (action,) = [a for a in launch._actions if f"--{key}" in a.option_strings]
        assert action.help in {k.help for s in specs() for k in s.extra_sources if k.name == key}
    text = launch.format_help()
    for s in specs():
        assert s.default_checkpoint in " ".join(text.split())


@pytest.mark.parametrize("name", MODELS)
def test_the_spec_agrees_with_its_models_folder(name: str) -> None:
    """Presets and the published checkpoint are the model's own (the spec names them so that
    reading it loads no model)."""
    model = importlib.import_module(f"models.{name}")
    s = spec(name)
    assert s.default_checkpoint == model.DEFAULT_CHECKPOINT
    assert s.checkpoints is not None and set(s.checkpoints.presets) == set(model.PRESETS)
    assert s.source_keys[0] == "checkpoint"


def test_the_source_keys_are_the_models_own() -> None:
    assert source_keys() == ("checkpoint", "tokenizer")
    assert spec("kronos").source_keys == ("checkpoint", "tokenizer")
    assert spec("toto").source_keys == spec("chronos2").source_keys == ("checkpoint",)
    with pytest.raises(TypeError, match="unknown sources: vocabulary"):
        load_backend("toto", vocabulary="x")


@pytest.mark.parametrize("name", MODELS)
def test_checkpoint_init_is_seeded_and_refuses_an_unknown_preset(
    name: str, random_checkpoints: dict[str, Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    again = tmp_path / "again"
    assert run_cli("checkpoint", "init", "--arch", name, "--preset", "tiny", again) == 0
    files = sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert files and files == sorted(
        p.relative_to(random_checkpoints[name])
        for p in random_checkpoints[name].rglob("*")
        if p.is_file()
    )
    for relative in files:  # the same seed, the same bytes
        assert (again / relative).read_bytes() == (random_checkpoints[name] / relative).read_bytes()
    assert run_cli("checkpoint", "init", "--arch", name, "--preset", "huge", tmp_path / "x") == 2
    assert f"unknown {name} preset 'huge'" in capsys.readouterr().err


@pytest.mark.parametrize("name", MODELS)
def test_the_space_loads_without_the_model_and_reads_the_trading_codes_configs(
    name: str,
) -> None:
    space = spec(name).space()
    assert space is load_space(name) is importlib.import_module(f"objectives.{name}").SPACE
    default = space.trading_default()
    assert space.from_config(default.to_config()) == default
    params = default.to_params()  # what Optuna holds (Kronos drops top_p under top_k)
    assert space.from_params(params).to_params() == params
    assert [space.from_params(p) for p in space.known_good()]
    json.dumps(space.describe())
    assert spec(name).config_name(default.to_config()) is not None  # the trading code names it


@pytest.mark.parametrize("name", MODELS)
def test_a_random_checkpoint_loads_and_forecasts_as_its_capabilities_say(
    name: str, random_checkpoints: dict[str, Path]
) -> None:
    s = spec(name)
    backend = load_backend(name, checkpoint=str(random_checkpoints[name]))
    assert backend.name == name
    assert type(backend.space) is type(s.space())
    bars = load_bars(SAMPLE_DATA, "AAPL")
    settings = s.space().trading_default()
    caps = s.capabilities
    evaluator = backend.evaluator(bars, TRADING, 2)
    assert evaluator.task.columns == TRADING.columns and set(TRADING.columns) <= set(caps.columns)
    origins = np.array([len(bars) - 1, len(bars)])
    first = evaluator.forecast(origins, settings, seed=1)
    second = evaluator.forecast(origins, settings, seed=2)
    assert first.points.shape == (2, len(TRADING.columns), 2)
    assert np.isfinite(first.points).all()
    same = np.array_equal(first.points, second.points)
    assert same == caps.deterministic  # a seed moves a sampling model's forecast, not this one
    # samples are drawn anew under each seed; quantiles are the model's fixed levels
    pairs = zip(first.draws, second.draws, strict=True)
    fixed = all(np.array_equal(a.values, b.values) for a, b in pairs)
    assert caps.output in ("samples", "quantiles") and fixed == (caps.output == "quantiles")
    if caps.max_horizon is not None:
        with pytest.raises(DataError):
            backend.evaluator(bars, TRADING, caps.max_horizon + 1)


@pytest.mark.parametrize("name", MODELS)
def test_task_defaults_come_from_the_spec(name: str) -> None:
    s = spec(name)
    assert resolve_horizon(TRADING, name, None) == s.default_horizon("trading")
    assert resolve_horizon(LEVELS, name, None) == 1
    assert resolve_horizon(TRADING, name, 3) == 3
    described = TRADING.describe(name, 1)
    assert {k: described[k] for k in s.task_notes("trading")} == s.task_notes("trading")


def test_the_defaults_that_differ_between_models() -> None:
    """What used to be spelled out per model outside its folders."""
    assert [s.name for s in specs() if s.prune_by_default] == ["kronos"]
    assert [s.name for s in specs() if s.capabilities.deterministic] == ["chronos2"]
    assert flat_selection_models() == ("kronos", "toto", "chronos2")
    assert {n: spec(n).default_horizon("trading") for n in MODELS} == {
        "kronos": 7, "toto": 1, "chronos2": 7,
    }  # fmt: skip


def test_reading_the_registry_loads_no_model() -> None:
    """Every spec is read without torch (the models load when asked)."""
    code = (
        "import sys; from objectives.registry import specs, source_keys; specs(); "
        "source_keys(); print(sorted(m for m in ('torch', 'chronos') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True,
        env={"PYTHONPATH": str(REPO), "PATH": ""},
    )  # fmt: skip
    assert out.stdout.strip() == "[]"
