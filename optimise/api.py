"""A small Python API for scripts and trading code that want more than the store's JSON.

Read only, except for the stage-1 disk cache :func:`forecast` may use. Every function is built
on the code the command line runs:

* :func:`live_record`: the live ``<store>/<model>/<SYMBOL>.json`` (the file the trading code
  reads), a :class:`~storage.record.Record`, or a :class:`~storage.foreign.Foreign` when the
  trading code's own tooling wrote it (:func:`storage.store.read_stored`);
* :func:`best_model`: the model ``<store>/best/<SYMBOL>.json`` names;
* :func:`study_records`: every finalised study's own record of the symbol
  (``<store>/<model>/studies/``), live or not;
* :func:`leaderboard`: a study's best distinct settings, as ``optimise status --top N`` ranks
  them (:mod:`optimise.leaderboard`);
* :func:`forecast`: forecasts made with a record's settings, as ``optimise forecast
  --from-store --json`` makes them, the rows it prints.

Errors a caller can act on are :class:`errors.OptimiseError` (one line saying what is wrong).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import numpy as np

from objectives.bars import Bars, check_symbol, load_bars
from objectives.disk_cache import open_cache
from objectives.evaluator import Backend, load_backend, load_space
from objectives.exceptions import DataError
from objectives.registry import source_keys
from optimise.forecast import _rows
from optimise.leaderboard import Row, load_boards, study_names
from optimise.sources import fill_from, model_sources
from storage.exceptions import StorageError
from storage.files import reason
from storage.foreign import Foreign, parse
from storage.record import Record
from storage.store import BEST, STUDIES, read_stored
from storage.urls import resolve, sqlite_path
from studies.exceptions import StudyError
from studies.refresh import latest_periods

__all__ = [
    "Backend",
    "Foreign",
    "Record",
    "Row",
    "best_model",
    "forecast",
    "leaderboard",
    "live_record",
    "study_records",
]

logger = logging.getLogger(__name__)

PathLike = str | Path


def live_record(store: PathLike, model: str, symbol: str) -> Record | Foreign | None:
    """The live record of (model, symbol), ``<store>/<model>/<SYMBOL>.json``.

    ``None`` when there is no such file; a :class:`Foreign` (``.describe()`` says whose,
    ``.record`` is set when it is in our schema) when this project did not write it. An
    unreadable file raises :class:`StorageError`.
    """
    return read_stored(Path(store), model, check_symbol(symbol))


def best_model(store: PathLike, symbol: str) -> str | None:
    """The model ``<store>/best/<SYMBOL>.json`` names (a registered model's name), or ``None``
    when there is no such file (or a foreign one names none)."""
    stored = read_stored(Path(store), BEST, check_symbol(symbol))
    return None if stored is None else stored.model


def study_records(store: PathLike, model: str, symbol: str) -> list[Record]:
    """Every finalised study's own record of (model, symbol), ``<store>/<model>/studies/``,
    oldest first (``metadata.created_at``, then study name). Files of other symbols are left
    out; an unreadable file raises :class:`StorageError`."""
    symbol = check_symbol(symbol)
    folder = Path(store) / model / STUDIES
    try:
        paths = sorted(p for p in folder.glob("*.json") if p.is_file())
    except OSError as exc:
        raise StorageError(f"cannot list {folder}: {reason(exc)}") from None
    records = []
    for path in paths:
        try:
            stored = parse(path.read_bytes())
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {reason(exc)}") from None
        except StorageError as exc:
            raise StorageError(f"{path}: {exc}") from None
        record = stored.record if isinstance(stored, Foreign) else stored
        if record is not None and record.symbol == symbol:
            records.append(record)
    return sorted(records, key=lambda r: (r.metadata.created_at, r.metadata.study_name))


def leaderboard(
    storage: str | None = None,
    study_name: str | None = None,
    *,
    model: str | None = None,
    symbol: str | None = None,
    top: int = 10,
) -> list[Row]:
    """The ``top`` best distinct settings of one study, ranked as ``optimise status --top N``
    ranks them (confirmed candidates first, rank 1 the exported winner).

    ``storage``: a database URL (``None``: ``$OPTIMISE_STORAGE``, else ``sqlite:///studies.db``).
    Name the study, or give ``model`` and ``symbol``: then the newest period of their one study
    (several, e.g. of other windows or metrics, is a :class:`StudyError` listing them).
    """
    from storage.database import Database

    if (study_name is None) == (model is None and symbol is None):
        raise DataError("leaderboard takes a study_name, or a model and a symbol")
    if study_name is None and (model is None or symbol is None):
        raise DataError("leaderboard takes both a model and a symbol")
    url = resolve(storage)
    path = sqlite_path(url)
    if path is not None and not path.exists():
        raise StorageError(f"no study database at {path}; run `optimise launch` first")
    db = Database.open(url)
    if study_name is None:
        assert model is not None and symbol is not None
        names = study_names(db.optuna, model=model, symbols=[check_symbol(symbol)])
        latest = sorted(latest_periods(names))
        if not latest:
            raise StudyError(f"no study of model {model} and symbol {symbol} in {db.label}")
        if len(latest) > 1:
            raise StudyError(
                f"{len(latest)} studies of model {model} and symbol {symbol} in {db.label} "
                f"({', '.join(latest)}); pass study_name"
            )
        study_name = latest[0]
    (board,) = load_boards(db.optuna, [study_name], top)
    return list(board.rows)


def forecast(
    record: Record | Foreign,
    data: PathLike | Bars | None = None,
    *,
    last: int = 5,
    checkpoint: str | None = None,
    device: str = "cpu",
    seed: int = 0,
    backend: Backend | None = None,
    cache_dir: str | None = None,
    **sources: str | None,
) -> list[dict[str, Any]]:
    """Forecasts of the last ``last`` bars and the next, unseen one with ``record``'s settings,
    task and horizon: the rows ``optimise forecast --from-store --json`` prints
    (``target_timestamp``, ``forecast``, ``band_low``, ``band_high``, ``actual`` (``None`` for
    the unseen bar), ``last_close``; with several columns or steps also ``column``, ``step``
    and ``last``).

    ``data``: a folder of ``<SYMBOL>.csv`` or loaded :class:`Bars` (``None``: the data folder
    the study recorded). The model is ``backend`` when given (reuse one across calls), else
    loaded from ``checkpoint`` and the model's other sources (``sources``, by the keys its
    registry entry names, e.g. ``tokenizer=``), each defaulting to what the study recorded (a
    warning on stderr where a given one differs). ``cache_dir``: the stage-1 disk cache as
    ``--cache-dir`` takes it (``None``: the command line's default; ``"none"``: off).
    """
    from optimise.commands import task_of

    if isinstance(record, Foreign):
        if record.record is None:
            raise DataError(f"cannot forecast with a {record.describe()}: not in our schema")
        record = record.record
    given = data if isinstance(data, (str, Path)) else None
    known = source_keys()
    unknown = sorted(set(sources) - set(known))
    if unknown:
        raise TypeError(f"forecast() got unknown sources: {', '.join(unknown)}")
    taken = argparse.Namespace(
        **{key: sources.get(key) for key in known}, data_dir=None if given is None else str(given)
    )
    taken.checkpoint = checkpoint
    fill_from(taken, record.metadata.sources, "the exported record")
    settings = load_space(record.model).from_config(record.settings)  # before the model loads
    bars = data if isinstance(data, Bars) else load_bars(Path(taken.data_dir), record.symbol)
    if last < 0 or last >= len(bars):
        raise DataError(f"last must be between 0 and {len(bars) - 1}")
    if backend is None:
        backend = load_backend(
            record.model, **model_sources(taken), device=device, disk_cache=open_cache(cache_dir)
        )
    described = record.metadata.task  # absent: a record made before tasks (levels)
    horizon = described.get("horizon", 1) if described else 1
    steps = horizon if isinstance(horizon, int) else 1
    evaluator = backend.evaluator(bars, task_of(described), steps)
    targets = np.arange(len(bars) - last, len(bars) + 1, dtype=np.int64)
    return _rows(bars, evaluator.forecast(targets, settings, seed))
