"""Kronos's entry in the model registry (:mod:`objectives.registry`): what every other module
needs to know about it, importable without the model."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from objectives.registry import BackendSpec, Capabilities, CheckpointTool, SourceKey, Sources

if TYPE_CHECKING:
    from objectives.disk_cache import DiskCache
    from objectives.evaluator import Backend, SearchSpace
    from objectives.settings import JSONValue, Settings

#: how each task fills a missing ``amount`` column of the frame Kronos reads
AMOUNT_FILL = {"trading": "volume * close", "levels": "volume * mean(open, high, low, close)"}
#: the keys of a config the trading code names (``test_hyperparameters_extended.py`` at
#: lee101/stock-prediction 3d98a753, the names in its ``hyperparams/`` records)
NAME_KEYS = ("temperature", "top_p", "sample_count", "top_k", "clip", "max_context")


def load(sources: Sources, device: str, disk_cache: DiskCache | None) -> Backend[Any]:
    from objectives.kronos import load as load_kronos

    # its evaluators take its own settings type, narrower than the protocol's ``Settings``
    backend = load_kronos(sources.get("checkpoint"), sources.get("tokenizer"), device, disk_cache)
    return cast("Backend[Any]", backend)


@functools.cache
def space() -> SearchSpace[Settings]:
    """The search space (one instance), without the model."""
    from objectives.kronos.space import KronosSpace

    return KronosSpace()


def write_checkpoint(out: Path, preset: str, seed: int) -> None:
    from models.kronos import write_random_checkpoint

    write_random_checkpoint(out, preset, seed)


def task_notes(task: str) -> dict[str, JSONValue]:
    return {
        "amount_fill": AMOUNT_FILL[task],
        "lookback": "max_context rows before the origin",
        "future_timestamps": "last timestamp + median step (the wrapper's rule)",
    }


def config_name(settings: Mapping[str, object]) -> str | None:
    """``kronos_opt_temp<T:.3f>_p<top_p:.2f>_s<sample_count>_k<top_k>_clip<clip:.2f>_ctx<max_context>``
    when every one of :data:`NAME_KEYS` is a number."""
    values = [settings.get(k) for k in NAME_KEYS]
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if len(numbers) != len(NAME_KEYS):
        return None
    s = dict(zip(NAME_KEYS, (float(v) for v in numbers), strict=True))
    return (
        f"kronos_opt_temp{s['temperature']:.3f}_p{s['top_p']:.2f}_s{int(s['sample_count'])}"
        f"_k{int(s['top_k'])}_clip{s['clip']:.2f}_ctx{int(s['max_context'])}"
    )


SPEC = BackendSpec(
    name="kronos",
    title="Kronos",
    default_checkpoint="NeoQuasar/Kronos-base",
    load=load,
    space=space,
    checkpoints=CheckpointTool(
        presets=("tiny", "base"),
        write=write_checkpoint,
        layout="model/ and tokenizer/, each config.json + model.safetensors",
    ),
    extra_sources=(
        SourceKey(
            "tokenizer",
            "Kronos tokenizer: folder or hub id (default: the study's, else <checkpoint>/"
            "tokenizer or NeoQuasar/Kronos-Tokenizer-base)",
        ),
    ),
    # a Kronos trial's cost is its cold stage 1 (the forward passes): pruning saves it
    prune_by_default=True,
    capabilities=Capabilities(output="samples", deterministic=False),
    # the trading code's backtest asks for a 7-step path (pred_len=7,
    # backtest_test3_inline.py:2761 at c059b75e)
    horizons={"trading": 7},
    task_notes=task_notes,
    config_name=config_name,
    flat_selection_key=True,
    example_params=(
        "temperature=0.15",
        "top_k=20",
        "top_p=1.0",
        "sample_count=64",
        "max_context=256",
        "clip=2",
    ),
)
