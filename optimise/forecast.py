"""``optimise forecast``: one-step forecasts for the last K bars and the next, unseen one."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from objectives.bars import Bars, check_symbol, load_bars
from objectives.evaluator import load_backend, load_space
from objectives.exceptions import DataError
from objectives.forecasts import Forecast
from objectives.metrics import METRICS, Metrics
from objectives.sanity import BAND_LOW, check
from objectives.tasks import PRICE_COLUMNS
from objectives.windows import split
from optimise.setup import disk_cache, window_spec
from optimise.sources import fill_from, model_sources, study_sources
from storage.record import Record
from storage.store import read_record
from studies.picture import BAND


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
    task = args.task_spec
    config: Mapping[str, object]  # the trading code's keys: the record's, or --param's
    if args.from_store:
        record = read_record(Path(args.store), args.model, check_symbol(args.symbol))
        if record is None:
            raise DataError(
                f"no exported {args.model} settings for {args.symbol} in {args.store}; "
                "run `optimise launch` or `optimise export`, or pass --param"
            )
        config = record.settings
        objective = record.objective
        _record_warnings(record)
        fill_from(args, record.metadata.sources, "the exported record")
        from optimise.commands import task_of

        described = record.metadata.task  # absent: a record made before tasks (levels)
        task = task_of(described)
        horizon = described.get("horizon", 1) if described else 1
        args.horizon = int(horizon) if isinstance(horizon, int) else 1
    else:
        config = parse_params(args.param)
        fill_from(args, _study_sources(args), "the study")
    if not args.from_store:
        objective = task.spec.metric  # the task's objective (a record names its own)
    settings = load_space(args.model).from_config(config)  # checked before the model loads
    bars = load_bars(Path(args.data_dir), args.symbol)
    if args.last < 0 or args.last >= len(bars):
        raise DataError(f"--last must be between 0 and {len(bars) - 1}")
    backend = load_backend(
        args.model, **model_sources(args), device=args.device, disk_cache=disk_cache(args)
    )
    if args.window:
        windows = split(len(bars), window_spec(args))
        targets = windows.validation if args.window == "validation" else windows.test
    else:
        targets = np.arange(len(bars) - args.last, len(bars) + 1, dtype=np.int64)
    evaluator = backend.evaluator(bars, task, args.horizon)
    forecast = evaluator.forecast(targets, settings, args.seed)
    rows = _rows(bars, forecast)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        from optimise.tables import print_table

        several = len(forecast.columns) > 1 or forecast.horizon > 1
        low, high = (f"{q:.0%}" for q in BAND)
        print_table(
            [
                "target",
                *(["column", "step"] if several else []),
                "forecast",
                low,
                high,
                "actual",
                "last" if several else "last close",
            ],  # fmt: skip
            [
                [
                    r["target_timestamp"],
                    *([r["column"], str(r["step"])] if several else []),
                    f"{r['forecast']:.6g}",
                    f"{r['band_low']:.6g}",
                    f"{r['band_high']:.6g}",
                    _fmt(r["actual"]),
                    f"{r['last'] if several else r['last_close']:.6g}",
                ]
                for r in rows
            ],
        )
    out = sys.stderr if args.json else sys.stdout
    scored = _with_actuals(bars, forecast)
    if scored is not None:
        from objectives.metrics import score

        metrics = score(bars, scored, task.path_score)
        if args.window:
            print(
                f"{args.window} ({task.name}, {','.join(task.columns)}, horizon {args.horizon}): "
                + ", ".join(
                    f"{m} {metrics.value(m):.6g} (naive {metrics.naive(m):.6g})"
                    for m in metrics.values
                ),
                file=out,
            )
        n = len(scored.origins)
        what = f"{args.window} window, {n} targets" if args.window else f"the last {n} bars"
        print(summary_line(what, metrics, objective), file=out)
    impossible = check(forecast)
    if impossible.any:
        print(
            f"warning: {impossible.points} of {impossible.total} forecasts are at or below 0 "
            f"(lowest {impossible.lowest:.6g}) and at {impossible.band} at least "
            f"{BAND_LOW:.0%} of the samples are: impossible prices, shown as computed, not "
            "clipped",
            file=sys.stderr,
        )
    return 0


def summary_line(what: str, metrics: Metrics, objective: str) -> str:
    """``summary (validation window, 20 targets): return_mae 0.0125 vs naive 0.0131 (skill
    +0.046), beats naive: yes; price MAE 0.74 vs naive 0.75 (price skill +0.010)``: the
    objective (the record's, else the task's) and the price MAE against naive (last value)."""
    value, naive = metrics.value(objective), metrics.naive(objective)
    better = METRICS[objective].better(value, naive)
    skill = ""
    if METRICS[objective].direction == "minimize" and naive != 0:
        skill = f" (skill {1 - value / naive:+.3f})"
    line = (
        f"summary ({what}): {objective} {value:.6g} vs naive {naive:.6g}"
        f"{skill}, beats naive: {'yes' if better else 'no'}"
    )
    if objective != "price_mae":
        line += (
            f"; price MAE {metrics.price_mae:.6g} vs naive {metrics.naive_price_mae:.6g} "
            f"(price skill {metrics.skill:+.3f})"
        )
    return line


def _with_actuals(bars: Bars, forecast: Forecast) -> Forecast | None:
    """The origins whose every step has an actual bar (``None`` if there are none)."""
    keep = forecast.origins + forecast.horizon - 1 < len(bars)
    if not keep.any():
        return None
    if keep.all():
        return forecast
    return Forecast(
        forecast.origins[keep], forecast.columns, forecast.points[keep],
        tuple(d for d, k in zip(forecast.draws, keep, strict=True) if k),
    )  # fmt: skip


def _record_warnings(record: Record) -> None:
    """The record's own warnings, on stderr: a winner that does not beat naive on validation,
    impossible forecasts (``metadata.warnings``)."""
    from optimise.commands import impossible_warning, naive_warning

    meta = record.metadata
    if record.validation.beats_naive is False:
        print(
            naive_warning(meta.study_name, meta.trial_number, record.objective, record.validation),
            file=sys.stderr,
        )
    if meta.warnings:
        print(impossible_warning(meta.study_name, meta.trial_number, meta.warnings),
              file=sys.stderr)  # fmt: skip


def _study_sources(args: argparse.Namespace) -> dict[str, Any] | None:
    """Sources recorded by this symbol's study, when the default database holds one."""
    from storage.database import Database
    from storage.urls import resolve, sqlite_path

    url = resolve(getattr(args, "storage", None))
    path = sqlite_path(url)
    if path is not None and not path.exists():
        return None
    return study_sources(args, Database.open(url).optuna)


def _rows(bars: Bars, forecast: Forecast) -> list[dict[str, Any]]:
    """One row per (origin, column, step); a single close column at one step keeps the rows
    it always had (``target_timestamp, forecast, actual, last_close``)."""
    several = len(forecast.columns) > 1 or forecast.horizon > 1
    future: list[np.datetime64] = []
    bands = {
        (c, h): forecast.quantiles(list(BAND), c, h)
        for c in range(len(forecast.columns))
        for h in range(forecast.horizon)
    }  # (origins, 2): the samples' 10% and 90% quantiles
    rows = []
    for w, origin in enumerate(forecast.origins):
        for c, column in enumerate(forecast.columns):
            index = PRICE_COLUMNS.index(column)
            for h in range(forecast.horizon):
                target = int(origin) + h
                unseen = target >= len(bars)
                while unseen and len(future) <= target - len(bars):
                    made = np.array(future, dtype=bars.timestamps.dtype)
                    future.append(next_timestamp(np.concatenate([bars.timestamps, made])))
                stamp = future[target - len(bars)] if unseen else bars.timestamps[target]
                row: dict[str, Any] = {"target_timestamp": str(stamp.astype("datetime64[s]")) + "Z"}
                if several:
                    row.update({"column": column, "step": h + 1})
                row["forecast"] = float(forecast.points[w, c, h])
                row["band_quantiles"] = list(BAND)
                row["band_low"], row["band_high"] = map(float, bands[c, h][w])
                row["actual"] = None if unseen else float(bars.prices[target, index])
                last = float(bars.prices[int(origin) - 1, index])
                row["last" if several else "last_close"] = last
                rows.append(row)
    return rows


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"
