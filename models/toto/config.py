"""Toto's configuration: the keys of the published ``config.json``, as a frozen dataclass."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from models.checkpoint import check_bounds
from models.exceptions import CheckpointError

CAUSAL_PATCH_SCALER = "<class 'model.scaler.CausalPatchStdMeanScaler'>"
MIXTURE_OF_STUDENT_TS = "<class 'model.distribution.MixtureOfStudentTsOutput'>"

#: sane bounds of the integers a model is sized by (the published base: 64, 768, 12, 12, 3072,
#: 24), checked before anything is built: a typo must not allocate terabytes
BOUNDS = {
    "patch_size": (1, 4096),
    "stride": (1, 4096),
    "embed_dim": (1, 65536),
    "num_layers": (1, 1024),
    "num_heads": (1, 1024),
    "mlp_hidden_dim": (1, 262144),
    "spacewise_every_n_layers": (-1, 1024),
    "k_components": (1, 1024),
}


@dataclass(frozen=True)
class TotoConfig:
    """Hyper-parameters of one Toto backbone (names and defaults as in the published config)."""

    patch_size: int = 64
    stride: int = 64
    embed_dim: int = 768
    num_layers: int = 12
    num_heads: int = 12
    mlp_hidden_dim: int = 3072
    dropout: float = 0.1  # training only; inference ignores it
    spacewise_every_n_layers: int = 12
    scaler_cls: str = CAUSAL_PATCH_SCALER
    output_distribution_classes: tuple[str, ...] = (MIXTURE_OF_STUDENT_TS,)
    output_distribution_kwargs: Mapping[str, Any] = field(
        default_factory=lambda: {"k_components": 24}
    )
    spacewise_first: bool = False
    use_memory_efficient_attention: bool = True  # an xFormers switch upstream; no effect here
    stabilize_with_global: bool = True
    scale_factor_exponent: float = 10.0

    def __post_init__(self) -> None:
        kwargs = self.output_distribution_kwargs
        k = kwargs.get("k_components") if isinstance(kwargs, Mapping) else None
        check_bounds("Toto config.json", {**self.__dict__, "k_components": k}, BOUNDS)
        problems = []
        if self.stride != self.patch_size:
            problems.append(f"stride {self.stride} != patch_size {self.patch_size}")
        if self.embed_dim % self.num_heads:
            problems.append(f"embed_dim {self.embed_dim} is not divisible by num_heads")
        if (self.embed_dim // self.num_heads) % 2:
            problems.append("the head dimension must be even (rotary embeddings)")
        every = self.spacewise_every_n_layers
        if every != -1 and (every < 1 or self.num_layers % every):
            problems.append(f"num_layers {self.num_layers} is not a multiple of {every}")
        if self.scaler_cls != CAUSAL_PATCH_SCALER:
            problems.append(f"scaler {self.scaler_cls!r} is not supported")
        if tuple(self.output_distribution_classes) != (MIXTURE_OF_STUDENT_TS,):
            problems.append(f"output {list(self.output_distribution_classes)} is not supported")
        if self.k_components < 1:
            problems.append("output_distribution_kwargs.k_components must be at least 1")
        if problems:
            raise CheckpointError("unsupported Toto config: " + "; ".join(problems))

    @property
    def k_components(self) -> int:
        return int(self.output_distribution_kwargs.get("k_components", 0))

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.num_heads

    def layer_is_spacewise(self, index: int) -> bool:
        """Whether layer ``index`` attends across variates (else across time)."""
        every = self.spacewise_every_n_layers
        if every == -1:
            return False
        position = index % every
        return position == 0 if self.spacewise_first else position == every - 1

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> TotoConfig:
        """Build from ``config.json`` contents; unknown keys (e.g. ``transformers_version``)
        are ignored."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in raw.items() if k in known}
        missing = [
            k for k in ("patch_size", "embed_dim", "num_layers", "num_heads") if k not in raw
        ]
        if missing:
            raise CheckpointError(f"Toto config.json lacks {', '.join(missing)}")
        if "output_distribution_classes" in values:
            values["output_distribution_classes"] = tuple(values["output_distribution_classes"])
        if values.get("output_distribution_kwargs") is None:
            values.pop("output_distribution_kwargs", None)
        try:
            return cls(**values)
        except TypeError as exc:
            raise CheckpointError(f"Toto config.json has a bad value: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """The published ``config.json`` form."""
        out = asdict(self)
        out["output_distribution_classes"] = list(self.output_distribution_classes)
        out["output_distribution_kwargs"] = dict(self.output_distribution_kwargs)
        return out
