"""What every model's settings type shares: the two outside forms and the checks of a value.

A trial's settings are a frozen dataclass per model (``KronosSettings`` in
``objectives/kronos/space.py``, ``TotoSettings`` in ``objectives/toto/space.py``), made from
Optuna params (``from_params``) or from a mapping in the trading code's keys (``from_config``:
the store's ``config``, ``optimise forecast --param``), checked once when made, and written
back with ``to_config`` (the trading code's keys, as its parser reads them) and ``to_params``
(Optuna's names, for ``enqueue_trial``). Only the command line and the store hold the mappings;
everything between suggestion and sampling holds the dataclass (docs/architecture.md).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import ClassVar, Generic, Protocol, SupportsFloat, SupportsIndex, TypeAlias, TypeVar

from objectives.exceptions import DataError

#: a JSON scalar of a config or of Optuna params
Value = float | int | str
#: the trading code's keys and values (the store's ``config``, a trial's ``config`` attr)
Config = dict[str, Value]
#: Optuna's parameter names and values (``trial.params``, ``study.enqueue_trial``)
Params = dict[str, Value]
#: any JSON value: what a description for a study's attrs or the record holds (the shape of
#: ``storage.record.JSONValue``, which this floor may not import; the two are one type)
JSONValue: TypeAlias = "str | int | float | bool | None | list[JSONValue] | dict[str, JSONValue]"

N = TypeVar("N", int, float)
S = TypeVar("S", bound="Settings")
S_co = TypeVar("S_co", bound="Settings", covariant=True)


class Settings(Protocol):
    """One model's settings, frozen and already checked."""

    def to_config(self) -> Config:
        """The trading code's keys and values."""

    def to_params(self) -> Params:
        """The Optuna params that suggest these settings."""


class SettingsType(Protocol[S_co]):
    """A model's settings dataclass itself: its two constructors from the outside forms."""

    def from_params(self, params: Mapping[str, object]) -> S_co:
        """From Optuna params."""

    def from_config(self, config: Mapping[str, object]) -> S_co:
        """From the trading code's keys (checked; one-line errors)."""


class ModelSpace(Generic[S]):
    """What every model's search space shares: its settings type makes settings from Optuna
    params and from configs, and the trading code's best setting is enqueued first."""

    #: the model's settings dataclass (a class attribute; ``ClassVar`` cannot hold ``S``)
    settings: SettingsType[S]
    trading_best: ClassVar[Config]  # the trading code's best setting, as it was written there
    #: what the trading code runs for a symbol without a record (its defaults), as it writes them
    trading_defaults: ClassVar[Config]

    def from_params(self, params: Mapping[str, object]) -> S:
        return self.settings.from_params(params)

    def from_config(self, config: Mapping[str, object]) -> S:
        return self.settings.from_config(config)

    def known_good(self) -> list[Params]:
        """Optuna params of the trading code's best (what its parser makes of it)."""
        return [self.settings.from_config(self.trading_best).to_params()]

    def trading_default(self) -> S:
        """The settings the trading code runs when a symbol has no record: the comparator of
        every exported winner's ``vs_default``."""
        return self.settings.from_config(self.trading_defaults)


def config_key(settings: Settings | Mapping[str, object]) -> str:
    """A canonical text of settings (or of a stored config), equal for equal settings."""
    config = settings if isinstance(settings, Mapping) else settings.to_config()
    return json.dumps(config, sort_keys=True)


def check_keys(model: str, given: Mapping[str, object], required: tuple[str, ...],
               optional: tuple[str, ...] = ()) -> None:  # fmt: skip
    """One-line ``DataError`` for missing or unknown keys of a ``model`` config."""
    missing = [k for k in required if k not in given]
    unknown = sorted(k for k in given if k not in required and k not in optional)
    expected = ", ".join([*required, *(f"{k} (optional)" for k in optional)])
    if missing:
        raise DataError(
            f"{model} config lacks {', '.join(map(repr, missing))} "
            f"(missing {', '.join(missing)}; expected {expected})"
        )
    if unknown:
        raise DataError(
            f"{model} config has unknown {', '.join(map(repr, unknown))} "
            f"(unknown {', '.join(unknown)}; expected {expected})"
        )


def number(model: str, name: str, value: object, kind: type[N]) -> N:
    """``value`` as ``kind`` (an int must be whole); a one-line ``DataError`` otherwise."""
    floatable = (str, bytes, bytearray, memoryview, SupportsFloat, SupportsIndex)  # float() takes
    if isinstance(value, bool) or not isinstance(value, floatable):
        raise DataError(f"{model} {name} must be a number, got {value!r}")
    try:
        as_float = float(value)
    except (TypeError, ValueError):
        raise DataError(f"{model} {name} must be a number, got {value!r}") from None
    if not math.isfinite(as_float) or (kind is int and as_float != int(as_float)):
        raise DataError(f"{model} {name} must be a finite {kind.__name__}, got {value!r}")
    return kind(as_float)


def param(model: str, params: Mapping[str, object], name: str) -> object:
    """``params[name]``, or a one-line ``DataError`` naming the missing Optuna param."""
    try:
        return params[name]
    except KeyError:
        raise DataError(f"{model} trial params lack {name!r}") from None
