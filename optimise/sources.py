"""Where a study's model and data came from, so later commands need not repeat them.

``launch`` records the checkpoint, tokenizer and data folder it was given (study attr
``sources``, and ``metadata.sources`` in the exported record). ``export`` and ``forecast``
fill any of them the user did not pass from the study (or, with ``--from-store``, from the
record), and warn when a passed one differs from what the study used.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from objectives.bars import check_symbol
from optimise.setup import window_spec
from studies.context import study_name

DEFAULT_DATA_DIR = "trainingdata"
KEYS = ("checkpoint", "tokenizer", "data_dir")


def launch_sources(args: argparse.Namespace) -> dict[str, str | None]:
    """What ``launch`` records: absolute paths for local folders, hub ids as given."""
    data_dir = args.data_dir or DEFAULT_DATA_DIR
    return {
        "checkpoint": _absolute(args.checkpoint),
        "tokenizer": _absolute(args.tokenizer),
        "data_dir": str(Path(data_dir).resolve()),
    }


def fill_from(
    args: argparse.Namespace, recorded: Mapping[str, str | None] | None, what: str
) -> None:
    """Take each source the user left out from ``recorded`` (a study's ``sources`` attr or a
    record's ``metadata.sources``); warn where a given one differs."""
    recorded = recorded or {}
    for key in KEYS:
        given, kept = getattr(args, key, None), recorded.get(key)
        if given is None:
            setattr(args, key, kept)
        elif kept is not None and _absolute(given) != kept:
            print(
                f"warning: --{key.replace('_', '-')} {given} differs from the {key} "
                f"{what} used ({kept}); its forecasts will differ",
                file=sys.stderr,
            )
    if args.data_dir is None:
        args.data_dir = DEFAULT_DATA_DIR


def study_sources(args: argparse.Namespace, storage: Any) -> dict[str, Any] | None:
    """The sources recorded by the study of ``args``' model, first symbol and windows."""
    import optuna

    symbol = getattr(args, "symbol", None) or (args.symbols or [None])[0]
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
    return study.user_attrs.get("sources")


def _absolute(value: str | None) -> str | None:
    """A local folder as an absolute path; a hub id (not a folder here) unchanged."""
    if value is None:
        return None
    path = Path(value).expanduser()
    return str(path.resolve()) if path.exists() else value
