"""The store record: one model's exported winner of one symbol, the trading code's contract.

:class:`Record` is exactly the JSON of ``<store>/<model>/<SYMBOL>.json`` (and of
``<store>/best/<SYMBOL>.json``, which adds ``metadata.best_selection``); docs/store-schema.md
documents every key. Invariants:

* :meth:`Record.to_json` gives the keys in the order the files have always had them: the
  trading code's keys at the top level, provenance under ``metadata``.
* An optional key (absent from records of older versions; ``best_selection`` outside ``best/``)
  is a field defaulting to ``None`` and is left out of the file when ``None``, never written as
  ``null``. A field that may be ``null`` in the file has no default.
* :meth:`Record.from_json` accepts exactly that shape, unknown keys refused, and raises a
  one-line :class:`StorageError` naming the key otherwise; ``Record.from_json(r.to_json()) == r``.
  A map the trading code writes as flat keys (``metadata.<model>_pct_return_mae``) is one field
  (:func:`_flattened`): its keys are those of the object that end in its suffix.
* ``config`` stays the trading code's JSON mapping, checked only to be JSON with a string
  ``name``: what its settings mean belongs to the models. Imports nothing of ours but
  :mod:`storage.exceptions`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar, Self, TypeAlias, TypeVar, cast

from storage.exceptions import StorageError

JSONValue: TypeAlias = "str | int | float | bool | None | list[JSONValue] | dict[str, JSONValue]"
JSONObject: TypeAlias = "dict[str, JSONValue]"

#: the metric of a record without ``metadata.objective`` (written before it was stored)
DEFAULT_OBJECTIVE = "price_mae"

T = TypeVar("T")
P = TypeVar("P", bound="_Part")
#: checks a JSON value at a key path and returns it as the field holds it
_Check = Callable[[object, str], T]


# ---------------------------------------------------------------------------------------------
# Checks of one JSON value; ``where`` is its key path, e.g. ``validation.price_mae``


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _wrong(value: object, where: str, expected: str) -> StorageError:
    return StorageError(f"{where or 'the record'} is {_kind(value)}, not {expected}")


def _str(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise _wrong(value, where, "a string")
    return value


def _int(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong(value, where, "an integer")
    return value


def _number(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _wrong(value, where, "a number")
    return value


def _bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise _wrong(value, where, "a boolean")
    return value


def _nullable(check: _Check[T]) -> _Check[T | None]:
    return lambda value, where: None if value is None else check(value, where)


def _array(check: _Check[T]) -> _Check[tuple[T, ...]]:
    def checked(value: object, where: str) -> tuple[T, ...]:
        if not isinstance(value, (list, tuple)):
            raise _wrong(value, where, "an array")
        return tuple(check(item, f"{where}[{i}]") for i, item in enumerate(value))

    return checked


def _json(value: object, where: str) -> JSONValue:
    """A copy of any JSON value (arrays as lists)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        return [_json(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, Mapping):
        return _json_object(value, where)
    raise _wrong(value, where, "a JSON value")


def _json_object(value: object, where: str) -> JSONObject:
    if not isinstance(value, Mapping):
        raise _wrong(value, where, "an object")
    return {_str(k, f"{where} key"): _json(v, _join(where, k)) for k, v in value.items()}


def _config(value: object, where: str) -> JSONObject:
    config = _json_object(value, where)
    if "name" not in config:
        raise StorageError(f"missing key {where}.name")
    _str(config["name"], f"{where}.name")
    return config


def _number_map(value: object, where: str) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise _wrong(value, where, "an object")
    return {_str(k, f"{where} key"): _number(v, _join(where, k)) for k, v in value.items()}


def _sources(value: object, where: str) -> dict[str, str | None]:
    if not isinstance(value, Mapping):
        raise _wrong(value, where, "an object")
    return {_str(k, f"{where} key"): _nullable(_str)(v, _join(where, k)) for k, v in value.items()}


def _part(cls: type[P]) -> _Check[P]:
    return cls.parse


def _join(where: str, key: object) -> str:
    return f"{where}.{key}" if where else str(key)


# ---------------------------------------------------------------------------------------------
# Fields: each carries the check of its JSON value; optional ones default to None


def _required(check: _Check[T]) -> T:
    spec: T = field(metadata={"check": check})  # a Field, typed as the value it stands for
    return spec


def _optional(check: _Check[T]) -> T | None:
    spec: T | None = field(default=None, metadata={"check": check})  # as in _required
    return spec


def _dump_part(part: _Part) -> JSONObject:
    """A part's fields by name (unset optional ones left out; a flattened map as its keys)."""
    out: JSONObject = {}
    for f in fields(part):
        item = getattr(part, f.name)
        if f.default is None and item is None:
            continue
        suffix = f.metadata.get("flattened")
        if suffix is None:
            out[f.name] = _dump(item)
        else:
            out.update({f"{key}{suffix}": _dump(v) for key, v in item.items()})
    return out


def _flattened(suffix: str, check: _Check[float]) -> Mapping[str, float] | None:
    """An optional map written as one key per entry, ``<entry><suffix>``, where the field
    stands: every key of the object that ends in ``suffix`` and is no field's own."""
    return field(default=None, metadata={"check": check, "flattened": suffix})


def _dump(value: object) -> JSONValue:
    if isinstance(value, _Part):
        return _dump_part(value)
    if isinstance(value, (list, tuple)):
        return [_dump(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _dump(item) for key, item in value.items()}
    return cast(JSONValue, value)  # a field's checked JSON scalar (a str, number, bool or None)


class _Part:
    """A JSON object of the record as a frozen dataclass: parsed and dumped field by field."""

    #: every subclass is a dataclass (declared for the type checker, which takes ``_Part`` for
    #: a plain class; set by ``@dataclass`` on each subclass)
    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]

    @classmethod
    def parse(cls, value: object, where: str) -> Self:
        """The object at key path ``where``; :class:`StorageError` naming the key if it is not."""
        if not isinstance(value, Mapping):
            raise _wrong(value, where, "an object")
        known = {f.name: f for f in fields(cls)}
        flat = {f.metadata["flattened"]: f for f in known.values() if "flattened" in f.metadata}
        given: dict[str, object] = {}
        for key in value:
            if key in known:
                continue
            suffix = next((s for s in flat if str(key).endswith(s) and key != s), None)
            if suffix is None:
                raise StorageError(f"unknown key {_join(where, key)}")
            entries = given.setdefault(flat[suffix].name, {})
            assert isinstance(entries, dict)
            check = flat[suffix].metadata["check"]
            entries[str(key).removesuffix(suffix)] = check(value[key], _join(where, key))
        for name, spec in known.items():
            if "flattened" in spec.metadata:
                continue
            if name in value:
                given[name] = spec.metadata["check"](value[name], _join(where, name))
            elif spec.default is MISSING:
                raise StorageError(f"missing key {_join(where, name)}")
        return cls(**given)

    def to_json(self) -> JSONObject:
        """The JSON object, keys in field order, optional keys that are ``None`` left out."""
        return _dump_part(self)


# ---------------------------------------------------------------------------------------------
# The record


@dataclass(frozen=True, kw_only=True)
class Paired(_Part):
    """A paired test of the winner against a comparator on the same targets (``vs_naive``,
    ``vs_default``): Diebold-Mariano with the Harvey-Leybourne-Newbold correction on the
    per-target losses of the objective (``objectives/significance.py``)."""

    #: the winner's mean loss over the comparator's (null when the comparator's is 0)
    mae_ratio: float | None = _required(_nullable(_number))
    #: the corrected statistic, negative when the winner's loss is lower (null when undefined)
    dm_stat: float | None = _required(_nullable(_number))
    p_value: float = _required(_number)  # two-sided
    method: str = _required(_str)

    def significant_edge(self, alpha: float = 0.05) -> bool:
        """Whether the winner's loss is lower with a two-sided p-value below ``alpha``."""
        if self.dm_stat is not None:
            lower = self.dm_stat < 0
        else:
            lower = self.mae_ratio is not None and self.mae_ratio < 1
        return lower and self.p_value < alpha


@dataclass(frozen=True, kw_only=True)
class Scores(_Part):
    """One window's scores: ``validation`` (confirmed means) or ``test`` (scored once)."""

    price_mae: float = _required(_number)
    return_mae: float = _required(_number)
    #: the trading code's name of ``return_mae`` (its selection scripts read it); equal to it
    pct_return_mae: float | None = _optional(_number)
    latency_s: float = _required(_number)
    naive_price_mae: float | None = _optional(_number)
    naive_return_mae: float | None = _optional(_number)
    skill: float | None = _optional(_number)
    beats_naive: bool | None = _optional(_bool)
    #: every registered metric, ``{name: value}`` (schema 2)
    metrics: Mapping[str, float] | None = _optional(_number_map)
    #: the naive forecast's value of every metric
    naive_metrics: Mapping[str, float] | None = _optional(_number_map)
    #: per price column, ``{column: {metric: value}}``
    per_column: Mapping[str, JSONValue] | None = _optional(_json_object)
    #: per path step (horizon > 1), ``[{metric: value}, ...]``, means over the columns
    per_step: tuple[JSONObject, ...] | None = _optional(_array(_json_object))
    #: the winner against naive and against the trading code's defaults, on the same targets
    vs_naive: Paired | None = _optional(_part(Paired))
    vs_default: Paired | None = _optional(_part(Paired))

    def metric(self, name: str) -> float | None:
        """The value of metric ``name``, if recorded."""
        flat = {"price_mae": self.price_mae, "return_mae": self.return_mae}
        if name in flat:
            return flat[name]
        return None if self.metrics is None else self.metrics.get(name)

    def naive(self, name: str) -> float | None:
        """The naive forecast's value of metric ``name``, if recorded."""
        flat = {"price_mae": self.naive_price_mae, "return_mae": self.naive_return_mae}
        if name in flat:
            return flat[name]
        return None if self.naive_metrics is None else self.naive_metrics.get(name)


@dataclass(frozen=True, kw_only=True)
class Block(_Part):
    """One block of a blocked validation protocol: its first and last target (UTC, ``…Z``)."""

    first: str = _required(_str)
    last: str = _required(_str)


@dataclass(frozen=True, kw_only=True)
class Windows(_Part):
    """The window lengths in bars and the forecast horizon; a blocked validation protocol adds
    its kind, blocks, step and each block's first and last target (absent: contiguous)."""

    val_window: int = _required(_int)
    test_window: int = _required(_int)
    forecast_horizon: int = _required(_int)
    kind: str | None = _optional(_str)
    val_blocks: int | None = _optional(_int)
    val_step: int | None = _optional(_int)
    blocks: tuple[Block, ...] | None = _optional(_array(_part(Block)))

    def key(self) -> tuple[int, int, int, int, int | None]:
        """What must match for two records to be comparable: the sizes and the protocol, not
        the blocks' dates (a refresh moves them)."""
        blocks = self.val_blocks or 1
        step = self.val_step if blocks > 1 else None
        return (self.val_window, self.test_window, self.forecast_horizon, blocks, step)

    def tag(self) -> str:
        """``v20-t20-h1``, blocked ``v20x3s60-t20-h1`` (the study name's form)."""
        blocks = self.val_blocks or 1
        val = f"v{self.val_window}" + (f"x{blocks}s{self.val_step}" if blocks > 1 else "")
        return f"{val}-t{self.test_window}-h{self.forecast_horizon}"


@dataclass(frozen=True, kw_only=True)
class Selection(_Part):
    """How the winner was confirmed: first pass vs confirmed means, seeds, candidates.

    Each candidate is ``trial_number``, ``config``, ``first_pass_<objective>``,
    ``confirmed_<objective>`` and ``confirmed_<objective>_se``.
    """

    method: str = _required(_str)
    first_pass_price_mae: float = _required(_number)
    confirmed_price_mae: float = _required(_number)
    confirmed_price_mae_se: float = _required(_number)
    first_pass_return_mae: float = _required(_number)
    confirmed_return_mae: float = _required(_number)
    confirmed_return_mae_se: float = _required(_number)
    search_seed: int = _required(_int)
    seeds: tuple[int, ...] = _required(_array(_int))
    candidates: tuple[JSONObject, ...] = _required(_array(_json_object))
    #: ``--select`` other than ``best``: the rule, ``winner`` or ``default``, why, and the
    #: p-value of the winner's validation edge over the default (``studies/selection.py``)
    rule: str | None = _optional(_str)
    chosen: str | None = _optional(_str)
    reason: str | None = _optional(_str)
    p_value: float | None = _optional(_number)


@dataclass(frozen=True, kw_only=True)
class Losses(_Part):
    """Each target's loss under the objective (its mean over the targets of a window is the
    window's value; ``1 - hit`` for ``direction_accuracy``), validation then test targets."""

    metric: str = _required(_str)
    forecast: tuple[float, ...] = _required(_array(_number))
    naive: tuple[float, ...] = _required(_array(_number))
    #: absent when finalisation did not score the defaults (``--no-default-comparison``)
    default: tuple[float, ...] | None = _optional(_array(_number))


@dataclass(frozen=True, kw_only=True)
class Forecasts(_Part):
    """What the winner's picture shows: validation then test targets, ``validation_count``
    of them validation."""

    timestamps: tuple[str, ...] = _required(_array(_str))
    actual: tuple[float, ...] = _required(_array(_number))
    naive: tuple[float, ...] = _required(_array(_number))
    forecast: tuple[float, ...] = _required(_array(_number))
    band_quantiles: tuple[float, ...] = _required(_array(_number))
    band_low: tuple[float, ...] = _required(_array(_number))
    band_high: tuple[float, ...] = _required(_array(_number))
    validation_count: int = _required(_int)
    #: the trading code's defaults' forecast of the same targets (same seeds)
    default: tuple[float, ...] | None = _optional(_array(_number))
    #: the per-target losses the paired tests compare
    losses: Losses | None = _optional(_part(Losses))


@dataclass(frozen=True, kw_only=True)
class Compared(_Part):
    """A model record that competed for ``best/``, with its validation value."""

    model: str = _required(_str)
    study_name: str = _required(_str)
    trial_number: int = _required(_int)
    validation: float = _required(_number)


@dataclass(frozen=True, kw_only=True)
class Excluded(_Part):
    """A model record left out of ``best/`` and why (``study_name`` null if unreadable)."""

    model: str = _required(_str)
    study_name: str | None = _required(_nullable(_str))
    reason: str = _required(_str)


@dataclass(frozen=True, kw_only=True)
class BestSelection(_Part):
    """Why ``best/`` holds this record: the anchor, the objective, compared and excluded."""

    anchor: str = _required(_str)
    objective: str = _required(_str)
    compared: tuple[Compared, ...] = _required(_array(_part(Compared)))
    excluded: tuple[Excluded, ...] = _required(_array(_part(Excluded)))


@dataclass(frozen=True, kw_only=True)
class Metadata(_Part):
    """Provenance. Only ``study_name``, ``trial_number`` and ``created_at`` are in every record;
    the rest is optional because older records lack it (today's exports write all but
    ``best_selection``)."""

    source: str | None = _optional(_str)
    #: 2 since forecast tasks and the metric registry; absent in older records
    schema_version: int | None = _optional(_int)
    study_name: str = _required(_str)
    study_uid: str | None = _optional(_str)
    trial_number: int = _required(_int)
    objective: str | None = _optional(_str)
    objective_value: float | None = _optional(_number)
    #: the forecast task the study scored, every choice spelled out (absent: ``levels``)
    task: Mapping[str, JSONValue] | None = _optional(_json_object)
    storage: str | None = _optional(_str)
    data_fingerprint: str | None = _optional(_str)
    checkpoint: str | None = _optional(_str)
    sources: Mapping[str, str | None] | None = _optional(_sources)
    seed: int | None = _optional(_int)
    min_context: int | None = _optional(_int)
    selection: Selection | None = _optional(_part(Selection))
    latency: Mapping[str, JSONValue] | None = _optional(_json_object)
    forecasts: Forecasts | None = _optional(_part(Forecasts))
    validation_naive_price_mae: float | None = _optional(_number)
    validation_skill: float | None = _optional(_number)
    test_naive_price_mae: float | None = _optional(_number)
    test_skill: float | None = _optional(_number)
    complete_trials: int | None = _optional(_int)
    validation_end: str | None = _optional(_str)
    test_end: str | None = _optional(_str)
    created_at: str = _required(_str)
    #: when the study's newest complete trial finished, for a record published again after
    #: the study gained trials without changing its winner (``complete_trials`` then counts them)
    updated_at: str | None = _optional(_str)
    #: impossible forecasts of the winner (a price, band edge or path step at or below 0), one
    #: line each; exported as computed, never clipped (absent: none found)
    warnings: tuple[str, ...] | None = _optional(_array(_str))
    #: in ``best/`` only, the trading code's keys: what the choice compared
    #: (``validation_<metric>``; ``validation_pct_return_mae`` for ``return_mae``), the winner's
    #: value of it, each compared model's validation ``pct_return_mae`` (flat,
    #: ``<model>_pct_return_mae``, for the models the trading code's selection writes so, and
    #: as a map), and how much lower the winner's is than the runner-up's, in percent of it
    #: (``storage.best.improvement_pct``)
    selection_metric: str | None = _optional(_str)
    selection_value: float | None = _optional(_number)
    #: model -> its ``<model>_pct_return_mae`` key's value
    model_pct_return_mae: Mapping[str, float] | None = _flattened("_pct_return_mae", _number)
    candidate_pct_return_mae: Mapping[str, float] | None = _optional(_number_map)
    improvement_pct: float | None = _optional(_number)
    best_selection: BestSelection | None = _optional(_part(BestSelection))


@dataclass(frozen=True, kw_only=True)
class Record(_Part):
    """One store file: the trading code's keys, then ``metadata``."""

    symbol: str = _required(_str)
    model: str = _required(_str)
    config: Mapping[str, JSONValue] = _required(_config)
    validation: Scores = _required(_part(Scores))
    test: Scores = _required(_part(Scores))
    windows: Windows = _required(_part(Windows))
    #: in ``best/`` only: the live model record's path, as the trading code's selection writes it
    config_path: str | None = _optional(_str)
    metadata: Metadata = _required(_part(Metadata))

    @classmethod
    def from_json(
        cls, data: bytes | str | Mapping[str, object], source: str | None = None
    ) -> Record:
        """A record from a file's bytes or text, or from a parsed mapping.

        Raises :class:`StorageError` with one line, ``<source>: <what is wrong>`` (just the
        problem when ``source`` is ``None``), naming the key at fault.
        """
        try:
            return cls.parse(_loads(data) if isinstance(data, (bytes, str)) else data, "")
        except StorageError as exc:
            if source is None:
                raise
            raise StorageError(f"{source}: {exc}") from None

    @property
    def objective(self) -> str:
        """The metric the study optimised; price MAE for records from before it was stored."""
        return self.metadata.objective or DEFAULT_OBJECTIVE

    @property
    def settings(self) -> JSONObject:
        """``config`` without its ``name``: the settings alone."""
        return {k: v for k, v in self.config.items() if k != "name"}

    def with_best_selection(self, selection: BestSelection) -> Record:
        """This record as ``best/`` holds it."""
        metadata = dataclasses.replace(self.metadata, best_selection=selection)
        return dataclasses.replace(self, metadata=metadata)


def _loads(data: bytes | str) -> object:
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise StorageError(f"not valid JSON ({exc.msg})") from None
    except ValueError as exc:  # e.g. not UTF-8
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StorageError(f"not valid JSON ({reason})") from None
