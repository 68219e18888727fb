"""Frozen configs of the Kronos tokenizer and predictor, as published in ``config.json``.

The published checkpoints store their constructor keyword arguments in ``config.json``
(``PyTorchModelHubMixin``); these dataclasses mirror those keys, ignore unknown extra keys, and
name the missing ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, Field, asdict, dataclass, fields
from typing import Any, ClassVar, TypeVar

from models.checkpoint import check_bounds
from models.exceptions import CheckpointError

C = TypeVar("C", bound="_Config")

#: sane bounds of the integers a model is sized by (the published base: d_model 832 and 256,
#: 12 and 4 layers, 10 bits), checked before anything is built: a typo must not allocate
#: terabytes (``2**s1_bits`` rows of embedding)
BOUNDS = {
    "d_in": (1, 1024),
    "d_model": (1, 65536),
    "n_heads": (1, 1024),
    "dep_heads": (1, 1024),
    "ff_dim": (1, 262144),
    "n_layers": (1, 1024),
    "n_enc_layers": (1, 1024),
    "n_dec_layers": (1, 1024),
    "s1_bits": (1, 20),
    "s2_bits": (1, 20),
    "group_size": (1, 40),
}


class _Config:
    #: every subclass is a dataclass (declared for the type checker; ``@dataclass`` sets it)
    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]

    @classmethod
    def from_dict(cls: type[C], raw: Mapping[str, Any], source: str = "config.json") -> C:
        """Build from a ``config.json`` mapping; unknown keys are ignored, missing ones named."""
        names = [f.name for f in fields(cls)]
        required = [f.name for f in fields(cls) if f.default is MISSING]
        missing = [n for n in required if n not in raw]
        if missing:
            raise CheckpointError(
                f"{source} lacks {', '.join(missing)}; is it a Kronos "
                f"{cls.__name__.removesuffix('Config').lower() or 'model'} checkpoint?"
            )
        config = cls(**{n: raw[n] for n in names if n in raw})
        check_bounds(source, vars(config), {k: v for k, v in BOUNDS.items() if k in names})
        config._check(source)
        return config

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def _check(self, source: str) -> None:
        pass


@dataclass(frozen=True)
class TokenizerConfig(_Config):
    """``NeoQuasar/Kronos-Tokenizer-*``: encoder/decoder transformers around a BSQ quantiser."""

    d_in: int
    d_model: int
    n_heads: int
    ff_dim: int
    n_enc_layers: int
    n_dec_layers: int
    s1_bits: int
    s2_bits: int
    group_size: int
    ffn_dropout_p: float = 0.0
    attn_dropout_p: float = 0.0
    resid_dropout_p: float = 0.0
    beta: float = 0.05
    gamma0: float = 1.0
    gamma: float = 1.1
    zeta: float = 0.05

    @property
    def codebook_dim(self) -> int:
        return self.s1_bits + self.s2_bits

    def _check(self, source: str) -> None:
        _check_heads(self.d_model, self.n_heads, source)
        if self.s1_bits != self.s2_bits:
            # upstream's decoder splits the codebook in two equal halves
            raise CheckpointError(
                f"{source}: s1_bits ({self.s1_bits}) must equal s2_bits ({self.s2_bits})"
            )
        if self.n_enc_layers < 1 or self.n_dec_layers < 1:
            raise CheckpointError(f"{source}: n_enc_layers and n_dec_layers must be >= 1")


@dataclass(frozen=True)
class PredictorConfig(_Config):
    """``NeoQuasar/Kronos-{mini,small,base}``: a decoder-only transformer over (s1, s2) tokens."""

    s1_bits: int
    s2_bits: int
    n_layers: int
    d_model: int
    n_heads: int
    ff_dim: int
    ffn_dropout_p: float = 0.0
    attn_dropout_p: float = 0.0
    resid_dropout_p: float = 0.0
    token_dropout_p: float = 0.0
    learn_te: bool = True

    #: heads of the dependency-aware (s2) layer: upstream builds it with its default of 4
    dep_heads: int = 4

    def _check(self, source: str) -> None:
        _check_heads(self.d_model, self.n_heads, source)
        _check_heads(self.d_model, self.dep_heads, source)

    def to_dict(self) -> dict[str, Any]:
        raw = asdict(self)
        raw.pop("dep_heads")  # not a constructor argument upstream
        return raw


def _check_heads(d_model: int, n_heads: int, source: str) -> None:
    if n_heads < 1 or d_model % n_heads or (d_model // n_heads) % 2:
        raise CheckpointError(
            f"{source}: d_model {d_model} must split into {n_heads} heads of even size"
        )
