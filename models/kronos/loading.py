"""Load the Kronos tokenizer and predictor from a folder or hub id; write random checkpoints.

A checkpoint is a folder with ``config.json`` (the upstream constructor arguments) and
``model.safetensors`` (upstream's state-dict keys). ``optimise checkpoint init`` writes
``OUT/model`` and ``OUT/tokenizer``; such a folder passed as the checkpoint brings its own
tokenizer.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from models import checkpoint
from models.exceptions import CheckpointError
from models.kronos.config import PredictorConfig, TokenizerConfig
from models.kronos.layers import RMSNorm
from models.kronos.model import Kronos, _FixedEmbedding
from models.kronos.tokenizer import KronosTokenizer

logger = logging.getLogger(__name__)

DEFAULT_CHECKPOINT = "NeoQuasar/Kronos-base"
DEFAULT_TOKENIZER = "NeoQuasar/Kronos-Tokenizer-base"

#: buffers upstream saves that are functions of the config; filled in when a file lacks them
DERIVED_SUFFIXES = ("rotary.inv_freq", "tokenizer.bsq.basis", "tokenizer.bsq.group_basis")

_TOKENIZER_BASE = TokenizerConfig(
    d_in=6, d_model=256, n_heads=4, ff_dim=512, n_enc_layers=4, n_dec_layers=4,
    s1_bits=10, s2_bits=10, group_size=4, beta=0.05, gamma0=1.0, gamma=1.1, zeta=0.05,
)  # fmt: skip

#: (tokenizer, predictor) configs by preset name; ``base`` is Kronos-base + Tokenizer-base
PRESETS: dict[str, tuple[TokenizerConfig, PredictorConfig]] = {
    "tiny": (
        TokenizerConfig(
            d_in=6, d_model=32, n_heads=2, ff_dim=64, n_enc_layers=2, n_dec_layers=2,
            s1_bits=6, s2_bits=6, group_size=4,
        ),
        PredictorConfig(s1_bits=6, s2_bits=6, n_layers=2, d_model=32, n_heads=2, ff_dim=64),
    ),
    "base": (
        _TOKENIZER_BASE,
        PredictorConfig(
            s1_bits=10, s2_bits=10, n_layers=12, d_model=832, n_heads=16, ff_dim=2048,
            ffn_dropout_p=0.2, resid_dropout_p=0.2, learn_te=True,
        ),
    ),
}  # fmt: skip


@dataclass(frozen=True)
class LoadedKronos:
    predictor: Kronos
    tokenizer: KronosTokenizer
    checkpoint_id: str
    tokenizer_id: str


def _load_state(module: nn.Module, tensors: Mapping[str, torch.Tensor], source: str) -> None:
    own = module.state_dict()
    filled = dict(tensors)
    for key, value in own.items():
        if key not in filled and key.endswith(DERIVED_SUFFIXES):
            filled[key] = value
    checkpoint.load_into(module, filled, source)


def _check_weights(
    folder: Path, layers: Mapping[str, tuple[int, int, str]], dims: Mapping[str, checkpoint.Axes]
) -> None:
    """A config against the shapes in the folder's weights header, before a model is built."""
    checkpoint.check_fits(
        f"{folder}/config.json", checkpoint.WEIGHTS_FILE, checkpoint.read_shapes(folder),
        layers, dims,
    )  # fmt: skip


def load_tokenizer(model_id: str | os.PathLike[str], device: str = "cpu") -> KronosTokenizer:
    folder = checkpoint.resolve(model_id)
    config = TokenizerConfig.from_dict(checkpoint.read_config(folder), f"{folder}/config.json")
    c, D = config, config.d_model
    _check_weights(
        folder,
        {
            # upstream builds n_layers - 1 blocks on each side
            "n_enc_layers": (c.n_enc_layers, c.n_enc_layers - 1, "encoder."),
            "n_dec_layers": (c.n_dec_layers, c.n_dec_layers - 1, "decoder."),
        },
        {
            "embed.weight": (("d_model", D, D), ("d_in", c.d_in, c.d_in)),
            "post_quant_embed_pre.weight": (("d_model", D, D), ("s1_bits", c.s1_bits, c.s1_bits)),
            "encoder.0.ffn.w1.weight": (("ff_dim", c.ff_dim, c.ff_dim), ("d_model", D, D)),
            "tokenizer.bsq.group_basis": (("group_size", c.group_size, c.group_size),),
        },
    )  # fmt: skip
    tokenizer = KronosTokenizer(config)
    _load_state(tokenizer, checkpoint.read_weights(folder), f"tokenizer {model_id}")
    return tokenizer.to(device).eval()


def load_predictor(model_id: str | os.PathLike[str], device: str = "cpu") -> Kronos:
    folder = checkpoint.resolve(model_id)
    config = PredictorConfig.from_dict(checkpoint.read_config(folder), f"{folder}/config.json")
    c, D = config, config.d_model
    _check_weights(
        folder,
        {"n_layers": (c.n_layers, c.n_layers, "transformer.")},
        {
            "embedding.emb_s1.weight": (("s1_bits", c.s1_bits, 2**c.s1_bits), ("d_model", D, D)),
            "embedding.emb_s2.weight": (("s2_bits", c.s2_bits, 2**c.s2_bits), ("d_model", D, D)),
            "transformer.0.ffn.w1.weight": (("ff_dim", c.ff_dim, c.ff_dim), ("d_model", D, D)),
        },
    )  # fmt: skip
    predictor = Kronos(config)
    _load_state(predictor, checkpoint.read_weights(folder), f"model {model_id}")
    return predictor.to(device).eval()


def load_kronos(
    checkpoint_id: str | os.PathLike[str] | None = None,
    tokenizer_id: str | os.PathLike[str] | None = None,
    device: str = "cpu",
) -> LoadedKronos:
    """Load predictor and tokenizer (``None``: the published Kronos-base pair).

    A checkpoint folder holding ``model/`` and ``tokenizer/`` (``optimise checkpoint init``)
    supplies both unless a tokenizer is named.
    """
    model_id: str | os.PathLike[str] = checkpoint_id or DEFAULT_CHECKPOINT
    path = Path(model_id).expanduser()
    if path.is_dir() and (path / "model").is_dir() and (path / "tokenizer").is_dir():
        if tokenizer_id is None:
            tokenizer_id = path / "tokenizer"
        model_id = path / "model"
    tokenizer_id = tokenizer_id or DEFAULT_TOKENIZER
    predictor = load_predictor(model_id, device)
    tokenizer = load_tokenizer(tokenizer_id, device)
    p, t = predictor.config, tokenizer.config
    if (p.s1_bits, p.s2_bits) != (t.s1_bits, t.s2_bits):
        raise CheckpointError(
            f"model {model_id} expects s1/s2 bits {p.s1_bits}/{p.s2_bits} but tokenizer "
            f"{tokenizer_id} makes {t.s1_bits}/{t.s2_bits}; pass the tokenizer it was trained "
            "with (--tokenizer)"
        )
    logger.info("loaded Kronos %s with tokenizer %s", model_id, tokenizer_id)
    return LoadedKronos(
        predictor, tokenizer, checkpoint.identity(model_id), checkpoint.identity(tokenizer_id)
    )


def _randomise(module: nn.Module, generator: torch.Generator) -> None:
    """Seeded random weights: every parameter non-trivial, so parity tests exercise it."""
    with torch.no_grad():
        for sub in module.modules():
            if isinstance(sub, _FixedEmbedding):
                continue  # sinusoidal, a function of the config
            if isinstance(sub, nn.Linear):
                fan_in, fan_out = sub.in_features, sub.out_features
                std = (2.0 / (fan_in + fan_out)) ** 0.5
                sub.weight.copy_(torch.randn(sub.weight.shape, generator=generator) * std)
                if sub.bias is not None:
                    sub.bias.copy_(torch.randn(sub.bias.shape, generator=generator) * 0.02)
            elif isinstance(sub, nn.Embedding):
                std = sub.embedding_dim**-0.5
                sub.weight.copy_(torch.randn(sub.weight.shape, generator=generator) * std)
            elif isinstance(sub, RMSNorm):
                sub.weight.copy_(1 + 0.1 * torch.randn(sub.weight.shape, generator=generator))


def random_models(preset: str, seed: int) -> tuple[Kronos, KronosTokenizer]:
    """A seeded random predictor and tokenizer of a preset (see :data:`PRESETS`)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown Kronos preset {preset!r}; choose from {', '.join(PRESETS)}")
    tokenizer_config, predictor_config = PRESETS[preset]
    generator = torch.Generator().manual_seed(seed)
    tokenizer = KronosTokenizer(tokenizer_config)
    predictor = Kronos(predictor_config)
    _randomise(tokenizer, generator)
    _randomise(predictor, generator)
    return predictor.eval(), tokenizer.eval()


def write_random_checkpoint(out: Path, preset: str, seed: int) -> None:
    """Write ``out/model`` and ``out/tokenizer`` with random weights in the published format."""
    predictor, tokenizer = random_models(preset, seed)
    out = Path(out)
    checkpoint.write(out / "tokenizer", tokenizer.config.to_dict(), tokenizer.state_dict())
    checkpoint.write(out / "model", predictor.config.to_dict(), predictor.state_dict())
