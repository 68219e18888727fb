"""Toto's entry in the model registry (:mod:`objectives.registry`): what every other module
needs to know about it, importable without the model."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from objectives.registry import BackendSpec, Capabilities, CheckpointTool, Sources

if TYPE_CHECKING:
    from objectives.disk_cache import DiskCache
    from objectives.evaluator import Backend, SearchSpace
    from objectives.settings import JSONValue, Settings

#: the series each task gives Toto: each column's percent changes, or its levels
SERIES = {"trading": "percent_change", "levels": "levels"}
#: the keys of a config the trading code names (``test_hyperparameters_extended.py`` at
#: lee101/stock-prediction 3d98a753, the names in its ``hyperparams/`` records)
NAME_KEYS = ("aggregate", "num_samples", "samples_per_batch")


def load(sources: Sources, device: str, disk_cache: DiskCache | None) -> Backend[Any]:
    from objectives.toto import load as load_toto

    # its evaluators take its own settings type, narrower than the protocol's ``Settings``
    return cast("Backend[Any]", load_toto(sources.get("checkpoint"), device, disk_cache))


@functools.cache
def space() -> SearchSpace[Settings]:
    """The search space (one instance), without the model."""
    from objectives.toto.space import TotoSpace

    return TotoSpace()


def write_checkpoint(out: Path, preset: str, seed: int) -> None:
    from models.toto import write_random_checkpoint

    write_random_checkpoint(out, preset, seed)


def task_notes(task: str) -> dict[str, JSONValue]:
    percent = SERIES[task] == "percent_change"
    return {
        "series": SERIES[task],
        "context": (
            "r[1..target-1], untruncated" if percent else "closes [target - max_context, target)"
        ),
        "aggregate_applies_to": (
            "return samples; price = last * (1 + aggregate)" if percent else "price samples"
        ),
    }


def config_name(settings: Mapping[str, object]) -> str | None:
    """``toto_opt_<aggregate>_<num_samples>_spb<samples_per_batch>`` when the config has every
    one of :data:`NAME_KEYS`, any other key added as ``_<key><value>``."""
    if not all(k in settings for k in NAME_KEYS):
        return None
    name = (
        f"toto_opt_{settings['aggregate']}_{settings['num_samples']}"
        f"_spb{settings['samples_per_batch']}"
    )
    extra = {k: v for k, v in settings.items() if k not in NAME_KEYS}
    return name + "".join(f"_{_short(k)}{_text(v)}" for k, v in extra.items())


def _short(key: str) -> str:
    return {"max_context": "ctx"}.get(key, key)


def _text(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


SPEC = BackendSpec(
    name="toto",
    title="Toto",
    default_checkpoint="Datadog/Toto-Open-Base-1.0",
    load=load,
    space=space,
    checkpoints=CheckpointTool(presets=("tiny", "base"), write=write_checkpoint),
    # a warm Toto trial costs less than the storage writes a pruning report adds
    prune_by_default=False,
    # one pass forecasts one patch (64 steps in the published config; the checkpoint's own
    # patch size is checked when an evaluator is made)
    capabilities=Capabilities(max_horizon=64, output="samples", deterministic=False),
    # the trading code's backtest forecasts one step at a time, walked forward
    # (cached_predict(context, 1, ...), backtest_test3_inline.py:1491 at c059b75e)
    horizons={"trading": 1},
    task_notes=task_notes,
    config_name=config_name,
    flat_selection_key=True,
    space_history=(
        "Toto aggregate specs now mean what the trading code's parser reads: lower/upper "
        "trimmed means and mean_quantile_mix were reversed before"
    ),
    example_params=("num_samples=1024", "aggregate=trimmed_mean_0.10"),
)
