"""Load a Chronos-2 pipeline from a folder or hub id (``config.json`` + ``model.safetensors``
only, offline under ``HF_HUB_OFFLINE=1``), and write random-weight checkpoints.

The model class, its config and the preprocessing (patching, scaling, quantile head) are the
``chronos-forecasting`` package's (``chronos.chronos2``); nothing is reimplemented here.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from models import checkpoint
from models.exceptions import CheckpointError

if TYPE_CHECKING:
    from chronos import Chronos2Pipeline

logger = logging.getLogger(__name__)

DEFAULT_CHECKPOINT = "amazon/chronos-2"

#: the 21 levels the published model's quantile head predicts
QUANTILES = [0.01, 0.05, *(round(0.1 + 0.05 * i, 2) for i in range(17)), 0.95, 0.99]

_FORECASTING = {
    "input_patch_size": 16,
    "input_patch_stride": 16,
    "output_patch_size": 16,
    "quantiles": QUANTILES,
    "use_reg_token": True,
    "use_arcsinh": True,
}

#: preset -> (core config, forecasting config); ``base`` has the published config's shapes
PRESETS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "tiny": (
        {"d_model": 32, "d_kv": 8, "d_ff": 64, "num_layers": 2, "num_heads": 4},
        {
            **_FORECASTING,
            "context_length": 2048,
            "max_output_patches": 4,
            "time_encoding_scale": 2048,
        },
    ),  # fmt: skip
    "base": (
        {"d_model": 768, "d_kv": 64, "d_ff": 3072, "num_layers": 12, "num_heads": 12},
        {
            **_FORECASTING,
            "context_length": 8192,
            "max_output_patches": 64,
            "time_encoding_scale": 8192,
        },
    ),  # fmt: skip
}


def _quiet() -> None:
    """No per-load progress bars from ``transformers`` on the command line's stderr."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def load_pipeline(
    model_id: str | os.PathLike[str] | None = None, device: str | torch.device = "cpu"
) -> Chronos2Pipeline:
    """The package's pipeline on a folder or hub id (default ``amazon/chronos-2``), float32."""
    from chronos import Chronos2Pipeline

    _quiet()
    folder = checkpoint.resolve(DEFAULT_CHECKPOINT if model_id is None else model_id)
    if not (folder / checkpoint.WEIGHTS_FILE).is_file():
        raise CheckpointError(f"{folder} has no {checkpoint.WEIGHTS_FILE} (safetensors only)")
    config = checkpoint.read_config(folder)
    if "chronos_config" not in config or "Chronos2Model" not in config.get("architectures", []):
        raise CheckpointError(f"{folder / checkpoint.CONFIG_FILE} is not a Chronos-2 config")
    try:
        pipeline = Chronos2Pipeline.from_pretrained(
            str(folder), dtype=torch.float32, use_safetensors=True, local_files_only=True
        )
    except (OSError, ValueError, RuntimeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"cannot load Chronos-2 from {folder}: {first}") from None
    pipeline.model.to(device).eval()
    logger.info("loaded Chronos-2 from %s", model_id or DEFAULT_CHECKPOINT)
    return pipeline


def random_pipeline(preset: str, seed: int) -> Chronos2Pipeline:
    """A pipeline on randomly initialised weights of ``preset`` (the package's own init)."""
    from chronos import Chronos2Pipeline
    from chronos.chronos2 import Chronos2Model
    from chronos.chronos2.config import Chronos2CoreConfig

    if preset not in PRESETS:
        raise CheckpointError(
            f"unknown chronos2 preset {preset!r}; choose from {', '.join(sorted(PRESETS))}"
        )
    core, forecasting = PRESETS[preset]
    config = Chronos2CoreConfig(
        **core, dropout_rate=0.0, chronos_config=dict(forecasting),
        architectures=["Chronos2Model"],
    )  # fmt: skip
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Chronos2Model(config)
    return Chronos2Pipeline(model=model.eval())


def write_random_checkpoint(out: Path, preset: str, seed: int) -> None:
    """Write ``config.json`` + ``model.safetensors`` of a random ``preset`` model to ``out``."""
    pipeline = random_pipeline(preset, seed)
    _quiet()
    pipeline.model.save_pretrained(str(out), safe_serialization=True)
    extra = sorted(p.name for p in Path(out).iterdir() if p.name not in
                   (checkpoint.CONFIG_FILE, checkpoint.WEIGHTS_FILE))  # fmt: skip
    for name in extra:  # e.g. generation_config.json: not part of the published layout
        (Path(out) / name).unlink()
