"""The Kronos search space, honest about upstream's filter semantics.

Upstream applies top-k and then skips top-p whenever ``top_k > 0``. The trading code's best
setting (T 0.152, top_p 0.83, top_k 20, sample_count 192, max_context 232, clip 1.85) therefore
never used its ``top_p``: under upstream's semantics it is ``filter=top_k, top_k=20``. Searching
``top_k`` and ``top_p`` together would make TPE model a parameter that does nothing, so the
space has a ``filter`` choice and suggests only the active parameter:

* ``filter=top_k``: ``top_k`` in 1..64 is searched; the config carries ``top_p = 1.0`` (inert);
* ``filter=top_p``: ``top_p`` in [0.5, 1.0] is searched; the config carries ``top_k = 0``.

The config returned is the trading code's (``temperature, top_p, top_k, sample_count,
max_context, clip``) with the values upstream will really apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from objectives.exceptions import DataError
from objectives.settings import Config, ModelSpace, Params, check_keys, number, param

if TYPE_CHECKING:
    import optuna

FILTERS = ("top_k", "top_p")
TOP_K = (1, 64)
TOP_P = (0.5, 1.0)
TEMPERATURE = (0.05, 1.5)
SAMPLE_COUNT = (1, 512)
MAX_CONTEXT = (64, 512)
CLIP = (0.5, 5.0)
# Stage 1 (one transformer pass per window) is cached per (max_context, clip): on grids TPE
# revisits pairs as it converges, so later trials reuse it; finer steps do not change forecasts
# in any way a 20-bar validation window could tell apart.
MAX_CONTEXT_STEP = 8
CLIP_STEP = 0.05

UPSTREAM_MAX_CONTEXT = 512  # contexts above 512 are truncated upstream

#: the trading code's best known setting, as it was written there
TRADING_BEST: Config = {
    "temperature": 0.152,
    "top_p": 0.83,
    "top_k": 20,
    "sample_count": 192,
    "max_context": 232,
    "clip": 1.85,
}

#: what the trading code runs without a record (``resolve_kronos_params``' defaults, each
#: overridden by a record's key; ../shared/CONSUMER.md): the comparator of ``vs_default``
TRADING_DEFAULTS: Config = {
    "temperature": 0.152,
    "top_p": 0.83,
    "top_k": 20,
    "sample_count": 192,
    "max_context": 232,
    "clip": 1.85,
}

KEYS = ("temperature", "top_p", "top_k", "sample_count", "max_context", "clip")


@dataclass(frozen=True)
class KronosSettings:
    """One Kronos sampling setting in the trading code's names, with upstream's meaning:
    ``top_k > 0`` means top-k and ``top_p`` is then ignored, ``top_k == 0`` means top-p.
    Checked when made; a bad value is a one-line ``DataError``."""

    temperature: float
    top_p: float
    top_k: int
    sample_count: int
    max_context: int
    clip: float

    def __post_init__(self) -> None:
        for name in ("temperature", "clip"):
            if not getattr(self, name) > 0:
                raise DataError(f"Kronos {name} must be positive, got {getattr(self, name)}")
        for name in ("sample_count", "max_context"):
            if getattr(self, name) < 1:
                raise DataError(f"Kronos {name} must be at least 1, got {getattr(self, name)}")
        if self.top_k < 0:
            raise DataError(f"Kronos top_k must be 0 (off) or more, got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise DataError(f"Kronos top_p must be in (0, 1], got {self.top_p}")

    @classmethod
    def from_config(cls, config: Mapping[str, object]) -> KronosSettings:
        """From the trading code's keys (all six, no others); values may be numeric text."""
        check_keys("Kronos", config, KEYS)
        return cls(
            temperature=number("Kronos", "temperature", config["temperature"], float),
            top_p=number("Kronos", "top_p", config["top_p"], float),
            top_k=number("Kronos", "top_k", config["top_k"], int),
            sample_count=number("Kronos", "sample_count", config["sample_count"], int),
            max_context=number("Kronos", "max_context", config["max_context"], int),
            clip=number("Kronos", "clip", config["clip"], float),
        )

    @classmethod
    def from_params(cls, params: Mapping[str, object]) -> KronosSettings:
        """From Optuna params (``filter`` and the active one of ``top_k`` / ``top_p``)."""
        kind = param("Kronos", params, "filter")
        if kind == "top_k":
            top_k, top_p = number("Kronos", "top_k", param("Kronos", params, "top_k"), int), 1.0
        elif kind == "top_p":
            top_k, top_p = 0, number("Kronos", "top_p", param("Kronos", params, "top_p"), float)
        else:
            raise DataError(f"unknown Kronos filter {kind!r}; expected top_k or top_p")
        clip = number("Kronos", "clip", param("Kronos", params, "clip"), float)
        return cls(
            temperature=number(
                "Kronos", "temperature", param("Kronos", params, "temperature"), float
            ),
            top_p=top_p,
            top_k=top_k,
            sample_count=number(
                "Kronos", "sample_count", param("Kronos", params, "sample_count"), int
            ),
            max_context=number(
                "Kronos", "max_context", param("Kronos", params, "max_context"), int
            ),
            clip=round(clip, 6),  # grid values without float dust
        )

    def to_config(self) -> Config:
        return {name: getattr(self, name) for name in KEYS}

    def to_params(self) -> Params:
        active: Params = {"filter": "top_k", "top_k": self.top_k} if self.top_k > 0 else {
            "filter": "top_p", "top_p": self.top_p}  # fmt: skip
        return {
            **active,
            "temperature": self.temperature,
            "sample_count": self.sample_count,
            "max_context": self.max_context,
            "clip": self.clip,
        }

    @property
    def context(self) -> int:
        """The context length upstream really uses (it truncates above 512)."""
        return min(self.max_context, UPSTREAM_MAX_CONTEXT)


class KronosSpace(ModelSpace[KronosSettings]):
    """Optuna params: ``filter``, ``top_k`` | ``top_p``, ``temperature``, ``sample_count``,
    ``max_context``, ``clip``."""

    settings = KronosSettings
    trading_best = TRADING_BEST
    trading_defaults = TRADING_DEFAULTS

    def suggest(self, trial: optuna.Trial) -> KronosSettings:
        params: Params = {"filter": trial.suggest_categorical("filter", list(FILTERS))}
        if params["filter"] == "top_k":
            params["top_k"] = trial.suggest_int("top_k", *TOP_K)
        else:
            params["top_p"] = trial.suggest_float("top_p", *TOP_P)
        params["temperature"] = trial.suggest_float("temperature", *TEMPERATURE, log=True)
        params["sample_count"] = trial.suggest_int("sample_count", *SAMPLE_COUNT, log=True)
        params["max_context"] = trial.suggest_int(
            "max_context", *MAX_CONTEXT, step=MAX_CONTEXT_STEP
        )
        params["clip"] = trial.suggest_float("clip", *CLIP, step=CLIP_STEP)
        return KronosSettings.from_params(params)

    def describe(self) -> dict[str, object]:
        return {
            "model": "kronos",
            "params": {
                "filter": {"type": "categorical", "choices": list(FILTERS)},
                "top_k": {"type": "int", "low": TOP_K[0], "high": TOP_K[1], "when": "filter=top_k"},
                "top_p": {
                    "type": "float", "low": TOP_P[0], "high": TOP_P[1], "when": "filter=top_p",
                },
                "temperature": {
                    "type": "float", "low": TEMPERATURE[0], "high": TEMPERATURE[1], "log": True,
                },
                "sample_count": {
                    "type": "int", "low": SAMPLE_COUNT[0], "high": SAMPLE_COUNT[1], "log": True,
                },
                "max_context": {
                    "type": "int", "low": MAX_CONTEXT[0], "high": MAX_CONTEXT[1],
                    "step": MAX_CONTEXT_STEP,
                },
                "clip": {"type": "float", "low": CLIP[0], "high": CLIP[1], "step": CLIP_STEP},
            },
            "semantics": "upstream: top_p is ignored whenever top_k > 0; inactive filter is "
            "reported as top_p=1.0 or top_k=0",
            "known_good_from": TRADING_BEST,
        }  # fmt: skip
