"""``optimise checkpoint init``: random weights in the published layout, written atomically."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from models.exceptions import CheckpointError
from objectives.registry import spec


def init_checkpoint(arch: str, preset: str, seed: int, out: Path, *, force: bool = False) -> Path:
    """Write a randomly initialised ``arch`` checkpoint of ``preset`` to ``out``."""
    tool = spec(arch).checkpoints
    if tool is None:
        raise CheckpointError(f"{arch} has no random checkpoints")
    presets = tool.presets
    if preset not in presets:
        raise CheckpointError(
            f"unknown {arch} preset {preset!r}; choose from {', '.join(sorted(presets))}"
        )
    out = out.expanduser()
    if out.exists() and any(out.iterdir()) and not force:
        raise CheckpointError(f"{out} exists and is not empty; pass --force to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        tool.write(staging, preset, seed)
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out
