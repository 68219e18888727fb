"""The model registry: which models there are, and what each one is (its :class:`BackendSpec`).

A model is two folders: ``models/<name>/`` (the network and its checkpoints) and
``objectives/<name>/`` (its evaluator, search space and ``spec.py``, whose ``SPEC`` is the
model's :class:`BackendSpec`). :data:`BACKENDS` is the one place that lists the models, by the
import path of each spec, in the order the trading code lists them; every other module (the
command line's choices and help, checkpoint tools, defaults, task descriptions, record names,
confirmation) asks this module rather than naming a model (``tests/test_model_names.py``).

Importing this module, and each spec, is cheap: no model, no ``torch``. A spec's callables
(``load``, ``space``, ``checkpoints.write``) import their model when called.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from objectives.exceptions import DataError

if TYPE_CHECKING:
    from objectives.disk_cache import DiskCache
    from objectives.evaluator import Backend, SearchSpace
    from objectives.settings import JSONValue, Settings

#: model name -> the module whose ``SPEC`` is its :class:`BackendSpec`; adding a model is one
#: line here (docs/architecture.md, "Adding a model")
BACKENDS: dict[str, str] = {
    "kronos": "objectives.kronos.spec",
    "toto": "objectives.toto.spec",
    "chronos2": "objectives.chronos2.spec",
}

#: where a model's weights come from, by source key: ``checkpoint`` and the spec's extra keys
Sources = Mapping[str, str | None]
#: ``(sources, device, disk_cache)`` -> the loaded backend
Loader = Callable[[Sources, str, "DiskCache | None"], "Backend[Any]"]


@dataclass(frozen=True)
class SourceKey:
    """A source besides the checkpoint (Kronos's ``tokenizer``): the command line's
    ``--<name>`` (its ``help``), recorded in a study's ``sources`` and a record's
    ``metadata.sources``, filled from them like the checkpoint."""

    name: str
    help: str


@dataclass(frozen=True)
class CheckpointTool:
    """``optimise checkpoint init --arch <name>``: random weights in the published layout."""

    #: preset names (``models/<name>``'s ``PRESETS``; the registry test checks they agree)
    presets: tuple[str, ...]
    #: ``(out, preset, seed)``: write a seeded random checkpoint of ``preset`` to the folder
    write: Callable[[Path, str, int], None]
    #: the files written, for the command's help
    layout: str = "config.json + model.safetensors"


@dataclass(frozen=True)
class Capabilities:
    """What the model can forecast, and what its forecasts are."""

    #: price columns it forecasts (any of open, high, low, close)
    columns: tuple[str, ...] = ("open", "high", "low", "close")
    #: the longest path one forecast may have (``None``: any length)
    max_horizon: int | None = None
    #: what a forecast's draws are: Monte-Carlo samples, or fixed quantiles
    output: Literal["samples", "quantiles"] = "samples"
    #: no seed changes a forecast: confirmation takes one draw, and its spread is exactly 0
    deterministic: bool = False


def _no_task_notes(task: str) -> dict[str, JSONValue]:
    return {}


def _no_name(settings: Mapping[str, object]) -> str | None:
    return None


@dataclass(frozen=True)
class BackendSpec:
    """Everything the rest of the project needs to know about one model."""

    #: the model's name: ``--model``, the store's folder, the study name's first part
    name: str
    #: the name people use (help texts)
    title: str
    #: the published weights loaded when no ``--checkpoint`` is given (a hub id)
    default_checkpoint: str
    #: load the model from its sources (``checkpoint`` and :attr:`extra_sources`; ``None``
    #: values take the published defaults)
    load: Loader
    #: the search space and settings type, without loading the model
    space: Callable[[], SearchSpace[Settings]]
    #: the random-checkpoint writer of ``optimise checkpoint init`` (``None``: none)
    checkpoints: CheckpointTool | None = None
    #: sources besides the checkpoint
    extra_sources: tuple[SourceKey, ...] = ()
    #: whether ``--prune auto`` prunes it (trials whose cost is the model's cold stage 1)
    prune_by_default: bool = False
    capabilities: Capabilities = field(default_factory=Capabilities)
    #: task name -> the task's default ``--horizon`` for this model (absent: 1)
    horizons: Mapping[str, int] = field(default_factory=dict)
    #: task name -> what the task means for this model, added to the task's description in a
    #: study's identity and its record (``objectives.tasks.Task.describe``)
    task_notes: Callable[[str], dict[str, JSONValue]] = _no_task_notes
    #: the trading code's ``config.name`` of a config in its keys (``None``: the generic
    #: ``<name>_opt_<key><value>...`` of :func:`storage.names.config_name`)
    config_name: Callable[[Mapping[str, object]], str | None] = _no_name
    #: whether the trading code's model selection writes ``metadata.<name>_pct_return_mae``
    #: in ``best/`` records (besides ``candidate_pct_return_mae``)
    flat_selection_key: bool = False
    #: why a study of an older search space of this model is not resumed (appended to the
    #: refusal), if there is more to say than that the space changed
    space_history: str = ""
    #: ``optimise forecast --param`` examples of this model's settings, for the help
    example_params: tuple[str, ...] = ()

    def default_horizon(self, task: str) -> int:
        """``--horizon`` when none is given, for task ``task``."""
        return int(self.horizons.get(task, 1))

    @property
    def source_keys(self) -> tuple[str, ...]:
        """``checkpoint`` and the extra source keys."""
        return ("checkpoint", *(s.name for s in self.extra_sources))


_loaded: dict[str, BackendSpec] = {}


def register(name: str, module: str) -> None:
    """Add model ``name`` whose ``SPEC`` is in ``module`` (tests' doubles; a plugin)."""
    BACKENDS.setdefault(name, module)


def names() -> tuple[str, ...]:
    """Every registered model, in registry order."""
    return tuple(BACKENDS)


def spec(name: str) -> BackendSpec:
    """The spec of model ``name``; a one-line :class:`DataError` for an unknown one."""
    if name not in BACKENDS:
        raise DataError(f"unknown model {name!r}; choose from {', '.join(BACKENDS)}")
    found = _loaded.get(name)
    if found is None:
        found = importlib.import_module(BACKENDS[name]).SPEC
        if not isinstance(found, BackendSpec) or found.name != name:
            raise TypeError(f"{BACKENDS[name]}.SPEC is not the BackendSpec of {name!r}")
        _loaded[name] = found
    return found


def find(name: str) -> BackendSpec | None:
    """The spec of model ``name``, or ``None`` when no such model is registered."""
    return spec(name) if name in BACKENDS else None


def specs() -> tuple[BackendSpec, ...]:
    """Every registered model's spec, in registry order."""
    return tuple(spec(name) for name in BACKENDS)


def source_keys() -> tuple[str, ...]:
    """Every source key a registered model reads, ``checkpoint`` first, each once."""
    keys = {"checkpoint": None}
    for s in specs():
        keys.update(dict.fromkeys(k.name for k in s.extra_sources))
    return tuple(keys)


def flat_selection_models() -> tuple[str, ...]:
    """The models whose ``<name>_pct_return_mae`` the trading code's selection writes flat."""
    return tuple(s.name for s in specs() if s.flat_selection_key)


def trading_config_name(model: str, settings: Mapping[str, object]) -> str | None:
    """The trading code's ``config.name`` of ``settings`` (model ``model``'s keys), or
    ``None`` when the model has no such rule, is unknown, or the config lacks its keys."""
    found = find(model)
    return None if found is None else found.config_name(settings)


def load_backend(
    name: str,
    *,
    checkpoint: str | None = None,
    device: str = "cpu",
    disk_cache: DiskCache | None = None,
    **extra: str | None,
) -> Backend[Any]:
    """Load model ``name`` from ``checkpoint`` and its extra sources (``tokenizer=...``);
    ``None`` takes the published defaults. A source another model reads but this one does
    not is ignored (the command line passes every ``--<source>``); one no model reads is an
    error. ``disk_cache``: the stage-1 cache's second level, shared with other processes
    (none by default; the command line opens the user's,
    :func:`objectives.disk_cache.open_cache`)."""
    model = spec(name)
    unknown = sorted(set(extra) - set(source_keys()))
    if unknown:
        raise TypeError(f"load_backend() got unknown sources: {', '.join(unknown)}")
    sources = {"checkpoint": checkpoint, **{k: extra.get(k) for k in model.source_keys[1:]}}
    return model.load(sources, device, disk_cache)


def load_space(name: str) -> SearchSpace[Settings]:
    """The search space (and settings type) of model ``name``, without loading the model."""
    return spec(name).space()


def lazy_attributes(package: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A model package's module ``__getattr__``: ``SPACE`` (its search space, from its spec,
    without the model) and each of ``names`` (name -> module) imported on first use, so that
    importing the package stays cheap."""

    def __getattr__(name: str) -> Any:
        if name == "SPACE":
            return importlib.import_module(f"{package}.spec").space()
        if name in names:
            return getattr(importlib.import_module(names[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
