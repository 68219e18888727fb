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
from typing import TYPE_CHECKING, Any

from objectives.exceptions import DataError

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

#: the trading code's best known setting, as it was written there
TRADING_BEST = {
    "temperature": 0.152,
    "top_p": 0.83,
    "top_k": 20,
    "sample_count": 192,
    "max_context": 232,
    "clip": 1.85,
}


class KronosSpace:
    """Optuna params: ``filter``, ``top_k`` | ``top_p``, ``temperature``, ``sample_count``,
    ``max_context``, ``clip``."""

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        params: dict[str, Any] = {"filter": trial.suggest_categorical("filter", list(FILTERS))}
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
        return self.config_from_params(params)

    def config_from_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        try:
            kind = params["filter"]
            if kind == "top_k":
                top_k, top_p = int(params["top_k"]), 1.0
            elif kind == "top_p":
                top_k, top_p = 0, float(params["top_p"])
            else:
                raise DataError(f"unknown Kronos filter {kind!r}; expected top_k or top_p")
            return {
                "temperature": float(params["temperature"]),
                "top_p": top_p,
                "top_k": top_k,
                "sample_count": int(params["sample_count"]),
                "max_context": int(params["max_context"]),
                "clip": round(float(params["clip"]), 6),  # grid values without float dust
            }
        except KeyError as exc:
            raise DataError(f"Kronos trial params lack {exc.args[0]!r}") from None

    def known_good(self) -> list[dict[str, Any]]:
        """The trading code's best: ``top_k 20`` is active, so its ``top_p 0.83`` is dropped."""
        best = TRADING_BEST
        return [
            {
                "filter": "top_k",
                "top_k": best["top_k"],
                "temperature": best["temperature"],
                "sample_count": best["sample_count"],
                "max_context": best["max_context"],
                "clip": best["clip"],
            }
        ]

    def describe(self) -> dict[str, Any]:
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
