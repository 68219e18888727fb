"""Resolve a model id (folder or hub repo) and load safetensors weights with explicit checks.

Shared by the Kronos and Toto loaders: a checkpoint is a folder holding ``config.json`` and
``model.safetensors``. Weights are loaded with safetensors only, never pickle.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from models.exceptions import CheckpointError

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def resolve(model_id: str | os.PathLike[str]) -> Path:
    """Return a local folder for ``model_id``: an existing path, or a hub repo via the HF cache.

    ``HF_HUB_OFFLINE=1`` is honoured by ``huggingface_hub`` itself (cache only).
    """
    path = Path(model_id).expanduser()
    if path.exists():
        if not path.is_dir():
            raise CheckpointError(f"checkpoint {model_id!s} is a file; pass its folder")
        return path
    text = str(model_id)
    if text.startswith((".", "/", "~")) or text.count("/") != 1:
        raise CheckpointError(
            f"checkpoint {text!r} is neither an existing folder nor a hub repo id (owner/name)"
        )
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(text, allow_patterns=[CONFIG_FILE, WEIGHTS_FILE]))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"cannot fetch {text!r} from the hub ({type(exc).__name__}); "
            "download it once online, or pass a local folder "
            "(`optimise checkpoint init` makes a random one)"
        ) from None


def identity(model_id: str | os.PathLike[str]) -> str:
    """How a checkpoint is named in studies and exports: a local folder's absolute path, else
    the hub repo id."""
    path = Path(model_id).expanduser()
    return str(path.resolve()) if path.exists() else str(model_id)


def read_config(folder: Path) -> dict[str, Any]:
    """Read ``config.json`` from a checkpoint folder."""
    file = folder / CONFIG_FILE
    try:
        return json.loads(file.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{file} is missing") from None
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{file} is not valid JSON: {exc.msg}") from None


def read_weights(folder: Path) -> dict[str, torch.Tensor]:
    """Read ``model.safetensors`` from a checkpoint folder (safetensors only)."""
    file = folder / WEIGHTS_FILE
    if not file.exists():
        raise CheckpointError(f"{file} is missing (only safetensors weights are loaded)")
    try:
        return load_file(str(file))
    except Exception as exc:  # safetensors raises its own error types
        raise CheckpointError(f"{file} is not a readable safetensors file: {exc}") from None


def read_shapes(folder: Path) -> dict[str, tuple[int, ...]]:
    """Each tensor's shape in ``model.safetensors``, from the file's header alone (no tensor is
    read), so that a config is checked against its weights before a model is built."""
    file = folder / WEIGHTS_FILE
    if not file.exists():
        raise CheckpointError(f"{file} is missing (only safetensors weights are loaded)")
    try:
        with safe_open(str(file), framework="pt") as weights:
            return {key: tuple(weights.get_slice(key).get_shape()) for key in weights.keys()}
    except Exception as exc:  # safetensors raises its own error types
        raise CheckpointError(f"{file} is not a readable safetensors file: {exc}") from None


def check_bounds(
    source: str, values: Mapping[str, object], bounds: Mapping[str, tuple[int, int]]
) -> None:
    """Each integer a model is sized by within sane bounds (and an integer at all), checked
    before anything is allocated or divided by it; the first offender is named."""
    for key, (low, high) in bounds.items():
        value = values.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise CheckpointError(
                f"{source}: {key} must be an integer from {low} to {high} (got {value!r})"
            )


#: per tensor, each axis as (the config key that sizes it, that key's value, the size implied)
Axes = tuple[tuple[str, int, int], ...]


def check_fits(
    config_source: str,
    weights_source: str,
    shapes: Mapping[str, tuple[int, ...]],
    layers: Mapping[str, tuple[int, int, str]],
    dims: Mapping[str, Axes],
) -> None:
    """A config against the weights' shapes (:func:`read_shapes`), before a model is built.

    ``layers``: config key -> (its value, the layers it makes, their prefix ``x.layers.``);
    ``dims``: tensor -> :data:`Axes`. A tensor the file lacks is skipped (loading names it).
    The first mismatch is one line naming the config key and the tensor that contradicts it.
    """
    for key, (value, count, prefix) in layers.items():
        pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
        found = len({m.group(1) for m in map(pattern.match, shapes) if m})
        if found != count:
            raise CheckpointError(
                f"{config_source}: {key} {value} does not fit {weights_source}, which holds "
                f"{found} layers {prefix}<i> ({count} expected)"
            )
    for tensor, axes in dims.items():
        if tensor not in shapes:
            continue
        found_shape, expected = tuple(shapes[tensor]), tuple(size for _, _, size in axes)
        if found_shape != expected:
            wrong = [a for a, n in zip(axes, found_shape, strict=False) if a[2] != n] or axes
            key, value, _ = wrong[0]
            raise CheckpointError(
                f"{config_source}: {key} {value} does not fit {weights_source}: wrong shape "
                f"{tensor} {found_shape} != {expected}"
            )


def load_into(module: torch.nn.Module, tensors: Mapping[str, torch.Tensor], source: str) -> None:
    """Copy ``tensors`` into ``module``, naming every missing, unexpected or mis-shaped key."""
    expected = module.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong_shape = [
        f"{key} {tuple(tensors[key].shape)} != {tuple(expected[key].shape)}"
        for key in sorted(set(expected) & set(tensors))
        if tensors[key].shape != expected[key].shape
    ]
    if missing or unexpected or wrong_shape:
        parts = []
        if missing:
            parts.append(f"missing {missing[:8]}{' ...' if len(missing) > 8 else ''}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:8]}{' ...' if len(unexpected) > 8 else ''}")
        if wrong_shape:
            parts.append(f"wrong shape {wrong_shape[:4]}")
        raise CheckpointError(f"{source} does not fit the architecture: " + "; ".join(parts))
    module.load_state_dict(dict(tensors), strict=True)


def write(folder: Path, config: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> None:
    """Write a checkpoint folder in the published layout (``config.json`` + safetensors)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG_FILE).write_text(json.dumps(dict(config), indent=2) + "\n")
    contiguous = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    save_file(contiguous, str(folder / WEIGHTS_FILE), metadata={"format": "pt"})
