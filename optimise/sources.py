"""Where a study's model and data came from, so later commands need not repeat them.

``launch`` records the checkpoint, the model's other sources (each model's registry entry
names them, e.g. a tokenizer) and the data folder it was given (study attr
``sources``, and ``metadata.sources`` in the exported record). ``launch``, ``export`` and
``forecast`` fill any of them the user did not pass from the study (or, with ``--from-store``,
from the record); ``export`` and ``forecast`` warn when a passed one differs from what the
study used, ``launch`` says in one line which it took (:func:`take_study_sources`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from objectives.bars import check_symbol
from objectives.registry import source_keys
from optimise.setup import window_spec
from studies.attrs import StudyAttrs
from studies.context import study_name

DEFAULT_DATA_DIR = "trainingdata"


def keys() -> tuple[str, ...]:
    """Every source: the registered models' (``checkpoint`` first), then ``data_dir``."""
    return (*source_keys(), "data_dir")


def model_sources(args: argparse.Namespace) -> dict[str, str | None]:
    """The model sources ``args`` holds (every registered model's keys; a model reads its own):
    the keywords of :func:`objectives.registry.load_backend`."""
    return {key: getattr(args, key, None) for key in source_keys()}


def launch_sources(args: argparse.Namespace) -> dict[str, str | None]:
    """What ``launch`` records: absolute paths for local folders, hub ids as given."""
    data_dir = args.data_dir or DEFAULT_DATA_DIR
    recorded = {key: _absolute(value) for key, value in model_sources(args).items()}
    return {**recorded, "data_dir": str(Path(data_dir).resolve())}


def fill_from(
    args: argparse.Namespace,
    recorded: Mapping[str, str | None] | None,
    what: str,
    *,
    warn: bool = True,
) -> dict[str, str]:
    """Take each source the user left out from ``recorded`` (a study's ``sources`` attr or a
    record's ``metadata.sources``); warn where a given one differs (unless ``warn`` is off).
    Returns the sources taken, by key."""
    recorded = recorded or {}
    taken: dict[str, str] = {}
    for key in keys():
        given, kept = getattr(args, key, None), recorded.get(key)
        if given is None:
            setattr(args, key, kept)
            if kept is not None:
                taken[key] = kept
        elif warn and kept is not None and _absolute(given) != kept:
            print(
                f"warning: --{key.replace('_', '-')} {given} differs from the {key} "
                f"{what} used ({kept}); its forecasts will differ",
                file=sys.stderr,
            )
    if args.data_dir is None:
        args.data_dir = DEFAULT_DATA_DIR
    return taken


def study_sources(args: argparse.Namespace, storage: Any) -> dict[str, Any] | None:
    """The sources recorded by the study of ``args``' model, first symbol and windows."""
    found = _sources_of_study(args, storage)
    return None if found is None else found[1]


def take_study_sources(args: argparse.Namespace, storage: Any) -> str | None:
    """``launch``: fill the sources left out from the study of ``args``' model, first symbol
    and windows, as ``export`` does (a given one that differs is the identity check's to
    refuse); the line that says which were taken, or ``None`` when none were."""
    found = _sources_of_study(args, storage)
    name, recorded = found if found is not None else ("", None)
    taken = fill_from(args, recorded, f"study {name}", warn=False)
    if not taken:
        return None
    flags = ", ".join(f"--{key.replace('_', '-')} {value}" for key, value in taken.items())
    return f"note: {flags} as study {name} recorded at launch (pass them to use others)"


def _sources_of_study(args: argparse.Namespace, storage: Any) -> tuple[str, Any] | None:
    """(name, recorded ``sources`` attr) of the study of ``args``' first symbol, if any."""
    import optuna

    symbol = getattr(args, "symbol", None) or (getattr(args, "symbols", None) or [None])[0]
    if symbol is None:
        return None
    from objectives.tasks import LEVELS

    task = getattr(args, "task_spec", LEVELS)
    metric = getattr(args, "metric", None) or task.spec.metric
    name = study_name(args.model, check_symbol(symbol), window_spec(args), metric, task)
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return None
    return name, StudyAttrs.of(study).sources


def _absolute(value: str | None) -> str | None:
    """A local folder as an absolute path; a hub id (not a folder here) unchanged."""
    if value is None:
        return None
    path = Path(value).expanduser()
    return str(path.resolve()) if path.exists() else value
