"""Chronos-2's entry in the model registry (:mod:`objectives.registry`): what every other
module needs to know about it, importable without the model."""

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


def load(sources: Sources, device: str, disk_cache: DiskCache | None) -> Backend[Any]:
    from objectives.chronos2 import load as load_chronos2

    # its evaluators take its own settings type, narrower than the protocol's ``Settings``
    return cast("Backend[Any]", load_chronos2(sources.get("checkpoint"), device, disk_cache))


@functools.cache
def space() -> SearchSpace[Settings]:
    """The search space (one instance), without the model."""
    from objectives.chronos2.space import Chronos2Space

    return Chronos2Space()


def write_checkpoint(out: Path, preset: str, seed: int) -> None:
    from models.chronos2 import write_random_checkpoint

    write_random_checkpoint(out, preset, seed)


def task_notes(task: str) -> dict[str, JSONValue]:
    return {
        "series": "price levels (float32), as the trading code's wrapper feeds them",
        "context": (
            "rows [target - context_length, target), each column alone or the columns as one "
            "multivariate series (use_multivariate)"
        ),
    }


def config_name(settings: Mapping[str, object]) -> str | None:
    """``chronos2_opt_ctx<context_length>_<aggregation>_<multi|uni>`` when ``context_length``
    is a number."""
    context = settings.get("context_length")
    if not isinstance(context, (int, float)) or isinstance(context, bool):
        return None
    mode = "multi" if settings.get("use_multivariate") else "uni"
    return f"chronos2_opt_ctx{context}_{settings.get('aggregation')}_{mode}"


SPEC = BackendSpec(
    name="chronos2",
    title="Chronos-2",
    default_checkpoint="amazon/chronos-2",
    load=load,
    space=space,
    checkpoints=CheckpointTool(presets=("tiny", "base"), write=write_checkpoint),
    prune_by_default=False,
    # fixed quantiles from one forward pass; longer paths are the package's autoregression
    capabilities=Capabilities(output="quantiles", deterministic=True),
    # the trading code's backtest asks for a 7-step path and trades its 7th step's price
    # (predict_ohlc(..., prediction_length=7), chronos2_abs = pred_values[-1]:
    # backtest_test3_inline.py:2787 and :2797 at c059b75e), as it does of Kronos
    horizons={"trading": 7},
    task_notes=task_notes,
    config_name=config_name,
    flat_selection_key=True,
)
