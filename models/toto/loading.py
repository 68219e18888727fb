"""Load Toto from a folder or hub repo (``config.json`` + ``model.safetensors``), and write
randomly initialised checkpoints in the published format.

Published keys sit under ``model.`` and name the feed-forward network either fused
(``mlp.0.w12.*``, ``mlp.0.w3.*``, as the hub checkpoint has) or unfused (``mlp.0.*``,
``mlp.2.*``); both map explicitly onto our modules. ``*rotary_emb.freqs`` entries, which some
checkpoints carry, hold constants that we recompute, and are skipped.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

import torch

from models import checkpoint
from models.exceptions import CheckpointError
from models.toto.config import TotoConfig
from models.toto.model import TotoModel

logger = logging.getLogger(__name__)

DEFAULT_CHECKPOINT = "Datadog/Toto-Open-Base-1.0"
SKIPPED_SUFFIXES = ("rotary_emb.freqs",)

_LAYER_KEYS = {
    "norm1.scale": "norm1.scale",
    "norm2.scale": "norm2.scale",
    "attention.wQKV.weight": "attention.wQKV.weight",
    "attention.wQKV.bias": "attention.wQKV.bias",
    "attention.wO.weight": "attention.wO.weight",
    "attention.wO.bias": "attention.wO.bias",
    "mlp.w12.weight": "mlp.0.w12.weight",
    "mlp.w12.bias": "mlp.0.w12.bias",
    "mlp.w3.weight": "mlp.0.w3.weight",
    "mlp.w3.bias": "mlp.0.w3.bias",
}
_UNFUSED = {
    "mlp.0.w12.weight": "mlp.0.weight",
    "mlp.0.w12.bias": "mlp.0.bias",
    "mlp.0.w3.weight": "mlp.2.weight",
    "mlp.0.w3.bias": "mlp.2.bias",
}
_OTHER_KEYS = {
    "patch_embed.weight": "model.patch_embed.projection.weight",
    "patch_embed.bias": "model.patch_embed.projection.bias",
    "unembed.weight": "model.unembed.weight",
    "unembed.bias": "model.unembed.bias",
    **{
        f"head.{name}.{part}": f"model.output_distribution.{name}.{part}"
        for name in ("df", "loc_proj", "scale_proj", "mixture_weights")
        for part in ("weight", "bias")
    },
}


def published_names(config: TotoConfig, fused: bool = True) -> dict[str, str]:
    """Our state-dict key -> the published key, for every tensor of the model."""
    names = dict(_OTHER_KEYS)
    for i in range(config.num_layers):
        for ours, theirs in _LAYER_KEYS.items():
            theirs = theirs if fused else _UNFUSED.get(theirs, theirs)
            names[f"layers.{i}.{ours}"] = f"model.transformer.layers.{i}.{theirs}"
    return names


def to_our_names(
    tensors: Mapping[str, torch.Tensor], config: TotoConfig
) -> dict[str, torch.Tensor]:
    """Rename published tensors to our keys; unknown keys pass through (and are then reported
    as unexpected), a tensor given both fused and unfused is an error."""
    ours_of = {v: k for k, v in published_names(config, fused=True).items()}
    ours_of.update({v: k for k, v in published_names(config, fused=False).items()})
    renamed: dict[str, torch.Tensor] = {}
    for key, tensor in tensors.items():
        if key.endswith(SKIPPED_SUFFIXES):
            continue
        ours = ours_of.get(key, key)
        if ours in renamed:
            raise CheckpointError(f"{key} duplicates another tensor (fused and unfused keys mixed)")
        renamed[ours] = tensor
    return renamed


def check_weights(config: TotoConfig, folder: Path) -> None:
    """``config`` against the shapes in the folder's weights header, before a model is built."""
    E, P, H, K = config.embed_dim, config.patch_size, config.mlp_hidden_dim, config.k_components
    w12 = (("mlp_hidden_dim", H, 2 * H), ("embed_dim", E, E))
    layer = "model.transformer.layers.0.mlp"
    checkpoint.check_fits(
        str(folder / checkpoint.CONFIG_FILE),
        checkpoint.WEIGHTS_FILE,
        checkpoint.read_shapes(folder),
        layers={"num_layers": (config.num_layers, config.num_layers, "model.transformer.layers.")},
        dims={
            "model.patch_embed.projection.weight": (("embed_dim", E, E), ("patch_size", P, P)),
            f"{layer}.0.w12.weight": w12,  # fused
            f"{layer}.0.weight": w12,  # unfused
            "model.output_distribution.mixture_weights.weight": (
                ("output_distribution_kwargs.k_components", K, K),
                ("embed_dim", E, E),
            ),
        },
    )


def load_model(
    model_id: str | os.PathLike[str] | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> TotoModel:
    """Load Toto from a folder or hub repo id (default ``Datadog/Toto-Open-Base-1.0``)."""
    model_id = DEFAULT_CHECKPOINT if model_id is None else model_id
    folder = checkpoint.resolve(model_id)
    config = TotoConfig.from_dict(checkpoint.read_config(folder))
    check_weights(config, folder)  # the header only: nothing is allocated before it fits
    tensors = to_our_names(checkpoint.read_weights(folder), config)
    model = TotoModel(config)
    checkpoint.load_into(model, tensors, f"{folder / checkpoint.WEIGHTS_FILE}")
    logger.info(
        "loaded Toto from %s (%s layers, dim %s)", model_id, config.num_layers, config.embed_dim
    )
    return model.to(device=device, dtype=dtype).eval()


def random_model(config: TotoConfig, seed: int) -> TotoModel:
    """A randomly initialised model (PyTorch's default init; norm scales jittered around 1 so
    that a test would notice a norm applied wrongly)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = TotoModel(config)
        for name, parameter in model.named_parameters():
            if name.endswith("norm1.scale") or name.endswith("norm2.scale"):
                with torch.no_grad():
                    parameter.add_(0.1 * torch.randn_like(parameter))
    return model.eval()


def write_model(model: TotoModel, out: Path, fused: bool = True) -> None:
    """Write ``model`` as a published-format checkpoint folder."""
    names = published_names(model.config, fused=fused)
    tensors = {names[key]: value for key, value in model.state_dict().items()}
    checkpoint.write(Path(out), model.config.to_dict(), tensors)
