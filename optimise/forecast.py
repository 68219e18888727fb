"""``optimise forecast``: one-step forecasts for the last K bars and the next, unseen one."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from objectives.bars import Bars, check_symbol, load_bars
from objectives.evaluator import load_backend, load_space
from objectives.exceptions import DataError
from objectives.windows import split
from optimise.setup import window_spec
from optimise.sources import fill_from, study_sources
from storage.store import read_record


def parse_params(pairs: list[str]) -> dict[str, object]:
    """``NAME=VALUE`` pairs; values are read as JSON when they parse, else kept as text."""
    params: dict[str, object] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name.strip():
            raise DataError(f"--param {pair!r} is not NAME=VALUE")
        try:
            params[name.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            params[name.strip()] = raw
    return params


def next_timestamp(timestamps: np.ndarray) -> np.datetime64:
    """The next bar's time: the usual spacing, skipping weekends if the series has none."""
    recent = timestamps[-21:]
    step = np.median(np.diff(recent).astype("timedelta64[s]").astype(np.int64))
    candidate = timestamps[-1] + np.timedelta64(int(step), "s")
    weekdays = (recent.astype("datetime64[D]").view("int64") - 4) % 7  # 0 = Monday
    if not np.any(weekdays >= 5):
        while (candidate.astype("datetime64[D]").view("int64") - 4) % 7 >= 5:
            candidate = candidate + np.timedelta64(1, "D")
    return candidate


def run_forecast(args: argparse.Namespace) -> int:
    if args.from_store:
        record = read_record(Path(args.store), args.model, check_symbol(args.symbol))
        if record is None:
            raise DataError(
                f"no exported {args.model} settings for {args.symbol} in {args.store}; "
                "run `optimise launch` or `optimise export`, or pass --param"
            )
        config = record.settings
        fill_from(args, record.metadata.sources, "the exported record")
    else:
        config = parse_params(args.param)
        fill_from(args, _study_sources(args), "the study")
    settings = load_space(args.model).from_config(config)  # checked before the model loads
    bars = load_bars(Path(args.data_dir), args.symbol)
    if args.last < 0 or args.last >= len(bars):
        raise DataError(f"--last must be between 0 and {len(bars) - 1}")
    backend = load_backend(
        args.model, checkpoint=args.checkpoint, tokenizer=args.tokenizer, device=args.device
    )
    if args.window:
        windows = split(len(bars), window_spec(args))
        targets = windows.validation if args.window == "validation" else windows.test
    else:
        targets = np.arange(len(bars) - args.last, len(bars) + 1, dtype=np.int64)
    values = backend.evaluator(bars).forecast_close(targets, settings, args.seed)
    rows = _rows(bars, targets, values)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        from optimise.tables import print_table

        print_table(
            ["target", "forecast", "actual", "last close"],
            [
                [
                    r["target_timestamp"],
                    f"{r['forecast']:.6g}",
                    _fmt(r["actual"]),
                    f"{r['last_close']:.6g}",
                ]
                for r in rows
            ],
        )
    return 0


def _study_sources(args: argparse.Namespace) -> dict[str, Any] | None:
    """Sources recorded by this symbol's study, when the default database holds one."""
    from storage.database import Database
    from storage.urls import resolve, sqlite_path

    url = resolve(getattr(args, "storage", None))
    path = sqlite_path(url)
    if path is not None and not path.exists():
        return None
    return study_sources(args, Database.open(url).optuna)


def _rows(bars: Bars, targets: np.ndarray, values: np.ndarray) -> list[dict[str, Any]]:
    rows = []
    for target, value in zip(targets, values, strict=True):
        unseen = target >= len(bars)
        stamp = next_timestamp(bars.timestamps) if unseen else bars.timestamps[target]
        rows.append(
            {
                "target_timestamp": str(stamp.astype("datetime64[s]")) + "Z",
                "forecast": float(value),
                "actual": None if unseen else float(bars.close[target]),
                "last_close": float(bars.close[target - 1]),
            }
        )
    return rows


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"
