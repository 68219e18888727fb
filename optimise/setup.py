"""Turn command-line arguments into validated study contexts, before anything is written."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from objectives.bars import Bars, check_symbol, list_symbols, load_bars
from objectives.disk_cache import DiskCache, open_cache
from objectives.evaluator import load_backend
from objectives.exceptions import DataError
from objectives.registry import spec as model_spec
from objectives.tasks import Task, parse_columns, resolve_horizon
from objectives.windows import WindowSpec, split
from studies.context import StudyContext


def resolve_task(args: argparse.Namespace) -> None:
    """Fill ``args.task_spec`` (a :class:`Task`), ``args.horizon`` and ``args.metric`` from
    ``--task``, ``--columns``, ``--path-score``, ``--horizon`` and ``--metric``, each
    defaulting to what the task implies for ``--model``; checked before anything is made."""
    name = getattr(args, "task", None)
    if name is None:
        return
    task = Task(name, parse_columns(args.columns, name), args.path_score)
    args.task_spec = task
    args.horizon = resolve_horizon(task, args.model, args.horizon)
    if getattr(args, "metric", None) is None and hasattr(args, "metric"):
        args.metric = task.spec.metric


def window_spec(args: argparse.Namespace) -> WindowSpec:
    return WindowSpec(
        val_window=args.val_window,
        test_window=args.test_window,
        horizon=args.horizon,
        min_context=args.min_context,
        val_blocks=getattr(args, "val_blocks", 1),
        val_step=getattr(args, "val_step", None),
    )


def symbols(args: argparse.Namespace) -> list[str]:
    if getattr(args, "all", False):
        found = list_symbols(Path(args.data_dir))
    else:
        found = [check_symbol(s) for s in dict.fromkeys(args.symbols)]
    for symbol in found:
        warn_if_not_upper_case(args, symbol)
    return found


def warn_if_not_upper_case(args: argparse.Namespace, symbol: str) -> None:
    """The trading code asks for upper-case tickers (``BTCUSD``): a record written under
    another spelling is never opened there (on a case-sensitive file system)."""
    if symbol == symbol.upper() or getattr(args, "store", None) is None:
        return
    store, model = Path(args.store), args.model
    print(
        f"warning: symbol {symbol} is not upper-case: its record will be "
        f"{store / model / f'{symbol}.json'}, but the trading code will look for "
        f"{store / model / f'{symbol.upper()}.json'} (name the data file {symbol.upper()}.csv)",
        file=sys.stderr,
    )


def checked_bars(args: argparse.Namespace, spec: WindowSpec) -> list[Bars]:
    """Every symbol's bars, each long enough for the windows; raises on the first defect."""
    data_dir = Path(args.data_dir)
    bars = [load_bars(data_dir, symbol) for symbol in symbols(args)]
    for series in bars:
        try:
            split(len(series), spec)
        except DataError as exc:
            raise DataError(f"{series.symbol}: {exc}") from None
    return bars


def contexts(args: argparse.Namespace, bars: list[Bars] | None = None) -> list[StudyContext]:
    """Validated data first (cheap), then the model (slow); nothing is written by either.
    ``bars``: the symbols' data, already checked against the windows (a sweep's)."""
    spec = window_spec(args)
    bars = checked_bars(args, spec) if bars is None else bars
    from optimise.sources import launch_sources, model_sources

    backend = load_backend(
        args.model, **model_sources(args), device=args.device, disk_cache=disk_cache(args)
    )

    sources = launch_sources(args)
    chunk = prune_chunk(args)
    return [
        StudyContext(
            backend,
            b,
            spec,
            metric=args.metric,
            seed=args.seed,
            sources=sources,
            prune_chunk=chunk,
            task=args.task_spec,
        )  # fmt: skip
        for b in bars
    ]


def disk_cache(args: argparse.Namespace) -> DiskCache | None:
    """The stage-1 disk cache of ``--cache-dir`` and ``--cache-size`` (``None``: off)."""
    return open_cache(getattr(args, "cache_dir", None), getattr(args, "cache_size", None))


PRUNE_CHUNK = 5  # validation windows per pruning step


def prune_chunk(args: argparse.Namespace) -> int:
    """``--prune``: ``auto`` prunes the models whose registry entry says so (those whose trial
    cost is the model's cold stage 1, not those whose warm trial costs less than the storage
    writes a report adds)."""
    mode = getattr(args, "prune", "off")
    if mode == "on" or (mode == "auto" and model_spec(args.model).prune_by_default):
        return PRUNE_CHUNK
    return 0
