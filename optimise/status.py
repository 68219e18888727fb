"""``optimise status``: one line per study.

Three views of the same facts, collected once per study (:func:`collect`):

* **the default table**, fitting 100 columns for the usual study names: per objective (a
  heading names it, its unit and direction) each study's finished trials (``+N`` running),
  the first-pass and confirmed (± its Monte-Carlo standard error) validation value, the naive
  forecast's, the test value scored once and its naive value, how many trials made
  non-positive price forecasts, and whether the study's record is the live one; then a few
  lines (foreign live records, a symbol's periods, which study is live where this one is not)
  and, on stderr, the warnings, each once;
* **``--wide``**: every column (trials by state, the task, the price skill of the test, the
  test's paired-test p-values against naive and the trading code's defaults, the export path)
  and the lines with every test metric and the paired tests;
* **``--json``**: a list of objects, one per study, with every field as a number, string or
  list (for scripts).

``--model`` and ``--symbols`` narrow every view (and the leaderboard, ``--top``); ``--watch N``
prints the table again every N seconds until Ctrl-C, which ends it with exit code 0.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import optuna
from sqlalchemy import text

from objectives.metrics import METRICS
from objectives.units import SHOWN, UNITS
from optimise.tables import format_table
from storage.database import Database
from storage.ledger import interrupted_count, trial_counts
from storage.optuna_internals import study_id
from studies.attrs import (
    MODEL,
    NONPOSITIVE_BAND,
    NONPOSITIVE_FORECASTS,
    SYMBOL,
    StudyAttrs,
    TrialAttrs,
    Winner,
)
from studies.exceptions import StudyError

#: the ``--wide`` table (the one ``status`` printed before the default table fitted 100 columns)
HEADER = [
    "study",
    "task",
    "objective",
    "complete",
    "pruned",
    "running",
    "waiting",
    "fail",
    "interrupted",
    "nonpos",
    "first-pass val",
    "confirmed val",
    "naive val",
    "test",
    "naive test",
    "test price skill",
    "test p naive/default",
    "export",
    "live",
]

#: the default table's columns and the groups above them (name, first column, last column)
COMPACT = ["study", "trials", "first", "confirmed", "naive", "once", "naive", "<=0", "live"]
GROUPS = (("validation", 2, 4), ("test", 5, 6))

Entry = dict[str, Any]


# ---------------------------------------------------------------------------------------------
# Collecting


def collect(
    db: Database,
    store: str | None = None,
    *,
    model: str | None = None,
    symbols: Sequence[str] | None = None,
) -> tuple[list[Entry], list[str], list[str]]:
    """One :data:`Entry` per study (of ``model`` and ``symbols`` when given), the lines to
    print under the table (foreign live records, periods), and the warnings (each once).
    ``store``: where to look for the live records (default: the store each study was exported
    to)."""
    summaries = [
        s
        for s in optuna.get_all_study_summaries(db.optuna, include_best_trial=True)
        if _wanted(s, model, symbols)
    ]
    nonpositive = _nonpositive_trials(db)
    live_lines: dict[str, str] = {}
    entries = [_entry(db, s, store, live_lines, nonpositive) for s in summaries]
    warnings = [w for e in entries for w in e["warnings"]]
    lines = [*live_lines.values(), *period_lines(summaries)]
    return entries, lines, list(dict.fromkeys(warnings))


def _wanted(
    summary: optuna.study.StudySummary, model: str | None, symbols: Sequence[str] | None
) -> bool:
    attrs = StudyAttrs.of(summary)
    if model is not None and attrs.model != model:
        return False
    return not symbols or attrs.symbol in set(symbols)


def _entry(
    db: Database,
    summary: optuna.study.StudySummary,
    store: str | None,
    live_lines: dict[str, str],
    nonpositive: dict[int, int],
) -> Entry:
    from optimise.commands import edge_warning, impossible_warning, naive_warning

    sid = study_id(summary)
    counts = trial_counts(db.engine, sid)
    interrupted = interrupted_count(db.engine, sid)
    attrs = StudyAttrs.of(summary)
    best = summary.best_trial
    winner = attrs.winner
    metric = attrs.metric
    name = summary.study_name
    entry: Entry = {
        "study": name,
        "model": attrs.model,
        "symbol": attrs.symbol,
        "period": attrs.period,
        "task": attrs.task,
        "task_label": task_label(attrs.task),
        "objective": metric,
        "unit": UNITS.get(metric),
        "direction": METRICS[metric].direction if metric in METRICS else None,
        "trials": {
            "complete": counts.get("COMPLETE", 0),
            "pruned": counts.get("PRUNED", 0),
            "running": counts.get("RUNNING", 0),
            "waiting": counts.get("WAITING", 0),
            "fail": counts.get("FAIL", 0) - interrupted,
            "interrupted": interrupted,
        },
        "protocol": protocol_of(attrs.windows),
        "nonpositive_trials": nonpositive.get(sid, 0),
        "first_pass": None,
        "naive_validation": None,
        "confirmed": None,
        "test": None,
        "export_path": attrs.export_path,
        "live": None,
        "live_detail": live_cell(name, attrs, store, live_lines),
        "warnings": [],
    }
    entry["live"] = {"yes": True, "-": None}.get(entry["live_detail"], False)
    if best is not None:
        entry["first_pass"] = {"value": best.value, "trial_number": best.number}
        entry["naive_validation"] = TrialAttrs.of(best).naive(metric)
    if winner is None:
        return entry
    validation, test = winner.validation, winner.test
    entry["naive_validation"] = _number(validation.naive(metric)) or entry["naive_validation"]
    entry["confirmed"] = {
        "value": validation.metric(metric),
        "se": winner.confirmed_se(metric),
        "trial_number": winner.trial_number,
        "beats_naive": validation.beats_naive,
    }
    entry["test"] = {
        "value": test.metric(metric),
        "naive": test.naive(metric),
        "price_skill": test.skill,
        "beats_naive": test.beats_naive,
        "p_naive": None if test.vs_naive is None else test.vs_naive.p_value,
        "p_default": None if test.vs_default is None else test.vs_default.p_value,
        "metrics": dict(test.metrics or {}),
        "naive_metrics": dict(test.naive_metrics or {}),
    }
    entry["paired"] = _paired(winner)
    objective, number = winner.objective, winner.trial_number
    default = winner.exported_default  # --select exported the trading default
    entry["exported"] = "default" if default else "winner"
    if default:
        entry["warnings"].append(str(winner.selection_warning))
    impossible = winner.warnings
    if impossible:
        entry["warnings"].append(impossible_warning(name, number, impossible))
    if validation.beats_naive is False:
        entry["warnings"].append(
            naive_warning(winner.study_name, number, objective, validation, default=default)
        )
    edge = edge_warning(winner.study_name, number, objective, test, default=default)
    if edge:
        entry["warnings"].append(edge)
    return entry


def _nonpositive_trials(db: Database) -> dict[int, int]:
    """Per study id, the trials that made a non-positive price forecast or band (their
    ``nonpositive_forecasts`` / ``nonpositive_band`` attrs), in one query."""
    query = text(
        "SELECT t.study_id, COUNT(DISTINCT t.trial_id) FROM trials t "
        "JOIN trial_user_attributes a ON a.trial_id = t.trial_id "
        "WHERE a.key IN (:points, :band) GROUP BY t.study_id"
    )
    with db.engine.connect() as connection:
        keys = {"points": NONPOSITIVE_FORECASTS, "band": NONPOSITIVE_BAND}
        rows = connection.execute(query, keys).all()
    return {int(sid): int(n) for sid, n in rows}


def protocol_of(windows: object) -> dict[str, object] | None:
    """A study's validation protocol from its ``windows`` attr: kind, window, blocks, step."""
    if not isinstance(windows, dict) or "val_window" not in windows:
        return None
    from objectives.windows import WindowSpec

    try:
        protocol = WindowSpec(**windows).protocol
    except (TypeError, ValueError):
        return None
    return {"kind": protocol.kind, "val_window": protocol.window, "val_blocks": protocol.blocks,
            "val_step": protocol.stride if protocol.blocks > 1 else None,
            "text": protocol.text()}  # fmt: skip


def protocol_lines(entries: Sequence[Entry]) -> list[str]:
    """One line per study scored under a blocked (rolling-origin) validation protocol."""
    return [
        f"  {e['study']}: validation {e['protocol']['text']} (rolling origin, before the test "
        "window)"
        for e in entries
        if e.get("protocol") and e["protocol"]["kind"] == "blocked"
    ]


def task_label(task: object) -> str:
    """``trading[close,high,low,open]h7`` from a study's ``task`` attr (absent: levels)."""
    if not isinstance(task, dict):
        return "levels[close]h1"
    return f"{task.get('name')}[{','.join(task.get('columns') or [])}]h{task.get('horizon')}"


def metrics_line(name: str, winner: dict) -> str | None:
    """Every metric of an exported winner on the test window, one line."""
    test = winner.get("test") or {}
    values = test.get("metrics")
    if not isinstance(values, dict):
        return None
    naive = test.get("naive_metrics") or {}
    cells = ", ".join(
        f"{m} {v:.6g} (naive {naive[m]:.6g})" if m in naive else f"{m} {v:.6g}"
        for m, v in values.items()
    )
    return f"  {name} test: {cells}"


def live_cell(name: str, attrs: StudyAttrs, store: str | None, lines: dict[str, str]) -> str:
    """Whether the study's record is the live ``<model>/<SYMBOL>.json`` of its store: ``yes``;
    ``no: <study> is live``; ``no: foreign``, ``no: none`` or ``unreadable``; ``-`` for a
    study never exported. A foreign live record adds one line (once per file) to ``lines``."""
    from storage.exceptions import StorageError
    from storage.foreign import Foreign
    from storage.store import read_stored, record_path

    model, symbol = attrs.attrs.get(MODEL), attrs.attrs.get(SYMBOL)  # as recorded, no fallback
    root = store or attrs.store
    exported = attrs.export_path
    if root is None and isinstance(exported, str) and exported.endswith(f"/{symbol}.json"):
        root = str(Path(exported).parents[1])  # exported before the store was recorded
    if not (isinstance(root, str) and isinstance(model, str) and isinstance(symbol, str)):
        return "-"
    path = record_path(Path(root), model, symbol)
    try:
        live = read_stored(Path(root), model, symbol)
    except StorageError:
        return "unreadable"
    if live is None:
        return "no: none"
    if isinstance(live, Foreign):
        lines.setdefault(str(path), f"  {path}: {live.describe()} is live for {model} {symbol}")
        return "no: foreign"
    if live.metadata.study_name == name and live.metadata.study_uid == attrs.uid:
        return "yes"
    return f"no: {live.metadata.study_name} is live"


def period_lines(summaries: Iterable[optuna.study.StudySummary]) -> list[str]:
    """One line per symbol's chain of periods (studies refreshed after bars were appended):
    each period's date and study, oldest first, and which one is current."""
    from studies.refresh import chains, split_name

    attrs = {s.study_name: StudyAttrs.of(s) for s in summaries}
    lines = []
    for base, names in sorted(chains({n: a.attrs for n, a in attrs.items()}).items()):
        if len(names) < 2:
            continue
        dates = ", ".join(f"{attrs[n].period or split_name(n)[1] or '?'} ({n})" for n in names)
        lines.append(f"  {base} periods: {dates}; current {names[-1]}")
    return lines


def paired_line(name: str, winner: dict) -> str | None:
    """An exported winner's paired tests (DM-HLN), both windows, one line; ``None`` for a
    winner exported before them."""
    return _paired_text(name, _paired(Winner(winner)))


def _paired_text(name: str, paired: Sequence[dict[str, Any]]) -> str | None:
    cells = [
        f"{p['window']} vs {p['against']} ratio "
        f"{'-' if p['mae_ratio'] is None else format(p['mae_ratio'], '.4g')} p {p['p_value']:.3g}"
        for p in paired
    ]
    return f"  {name} paired: {', '.join(cells)}" if cells else None


def _p_values(winner: dict | None) -> str:
    """``0.031/0.42``: the test window's p-values against naive and the trading default."""
    if not winner:
        return "-"
    test = Winner(winner).test
    if test.vs_naive is None and test.vs_default is None:
        return "-"
    return "/".join(
        "-" if paired is None else f"{paired.p_value:.2g}"
        for paired in (test.vs_naive, test.vs_default)
    )


def _paired(winner: Winner) -> list[dict[str, Any]]:
    found = []
    for window, scores in (("validation", winner.validation), ("test", winner.test)):
        for against, paired in (("naive", scores.vs_naive), ("default", scores.vs_default)):
            if paired is not None:
                found.append({"window": window, "against": against, **paired.to_json()})
    return found


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


# ---------------------------------------------------------------------------------------------
# Rendering


def _fmt(value: object, spec: str = ".6g") -> str:
    return format(value, spec) if _number(value) is not None else "-"


def wide_rows(entries: Sequence[Entry]) -> list[list[str]]:
    """Rows for :data:`HEADER`."""
    rows = []
    for e in entries:
        t, first, confirmed, test = e["trials"], e["first_pass"], e["confirmed"], e["test"]
        spread = ""
        if confirmed and confirmed["se"] is not None:
            spread = f" ± {confirmed['se']:.2g}"
        p_values = "-"
        if test and (test["p_naive"] is not None or test["p_default"] is not None):
            p_values = "/".join(_fmt(test[k], ".2g") for k in ("p_naive", "p_default"))
        rows.append(
            [
                e["study"],
                e["task_label"],
                e["objective"],
                *(
                    str(t[k])
                    for k in ("complete", "pruned", "running", "waiting", "fail", "interrupted")
                ),  # fmt: skip
                str(e["nonpositive_trials"]),
                _fmt(first["value"]) if first else "-",
                f"{_fmt(confirmed['value'])}{spread} (trial {confirmed['trial_number']})"
                if confirmed
                else "-",
                _fmt(e["naive_validation"]),
                _fmt(test["value"]) if test else "-",
                _fmt(test["naive"]) if test else "-",
                _fmt(test["price_skill"], "+.3f") if test else "-",
                p_values,
                str(e["export_path"] or "-"),
                e["live_detail"],
            ]
        )
    return rows


def wide_lines(entries: Sequence[Entry]) -> list[str]:
    """The ``--wide`` lines under the table: every test metric and the paired tests of each
    exported winner."""
    lines = []
    for e in entries:
        if e["test"] is None:
            continue
        test = {"metrics": e["test"]["metrics"], "naive_metrics": e["test"]["naive_metrics"]}
        lines += [
            line
            for line in (metrics_line(e["study"], {"test": test}),
                         _paired_text(e["study"], e.get("paired", [])))
            if line
        ]  # fmt: skip
    return lines


def compact_lines(entries: Sequence[Entry]) -> list[str]:
    """The default table: one block per objective, a heading naming its unit and direction,
    the columns grouped under validation and test; then which study is live where a study's
    record is not."""
    lines: list[str] = []
    for metric in dict.fromkeys(e["objective"] for e in entries):
        group = [e for e in entries if e["objective"] == metric]
        better = "higher" if METRICS.get(metric) and METRICS[metric].direction == "maximize" \
            else "lower"  # fmt: skip
        scale, unit = SHOWN.get(metric, (1.0, ""))
        if lines:
            lines.append("")
        lines.append(f"{metric} ({unit + '; ' if unit else ''}{better} is better):")
        rows = [_compact_row(e, scale) for e in group]
        lines += [line.rstrip() for line in grouped_table(COMPACT, rows)]
    notes = [
        f"  {e['study']}: not live ({e['live_detail'][4:]})"
        for e in entries
        if e["live_detail"].startswith("no: ")
    ]
    return lines + notes


def _compact_row(e: Entry, scale: float) -> list[str]:
    """A study's row of the default table, its values times ``scale`` (percent for returns)."""
    t, first, confirmed, test = e["trials"], e["first_pass"], e["confirmed"], e["test"]
    trials = str(t["complete"] + t["pruned"]) + (f"+{t['running']}" if t["running"] else "")

    def shown(value: object) -> str:
        number = _number(value)
        return "-" if number is None else f"{number * scale:#.4g}".rstrip(".")

    value = "-"
    if confirmed:
        se = _number(confirmed["se"])
        value = shown(confirmed["value"]) + ("" if se is None else f"±{se * scale:.1g}")
    live = e["live_detail"]
    return [
        e["study"],
        trials,
        shown(first["value"]) if first else "-",
        value,
        shown(e["naive_validation"]),
        shown(test["value"]) if test else "-",
        shown(test["naive"]) if test else "-",
        str(e["nonpositive_trials"]),
        "yes" if live == "yes" else ("-" if live == "-" else "no"),
    ]


def grouped_table(
    header: list[str],
    rows: Iterable[list[str]],
    groups: Sequence[tuple[str, int, int]] = GROUPS,
) -> list[str]:
    """:func:`format_table` with a line above naming ``groups`` of columns (name, first, last)."""
    table = format_table(header, list(rows))
    widths = [len(cell) for cell in table[1].split("  ")]
    starts = [sum(widths[:i]) + 2 * i for i in range(len(widths))]
    above = [" "] * len(table[1])
    for name, first, last in groups:
        span = starts[last] + widths[last] - starts[first]
        label = name.center(span, "-") if len(name) + 2 <= span else name
        above[starts[first] : starts[first] + len(label)] = label
    return ["".join(above).rstrip(), *table]


def json_entries(entries: Sequence[Entry]) -> str:
    return json.dumps(list(entries), indent=2, default=str) + "\n"


# ---------------------------------------------------------------------------------------------
# The command


def run_status(args: argparse.Namespace, db: Database) -> int:
    """Print the status once, or every ``--watch`` seconds until Ctrl-C (exit code 0)."""
    watch = getattr(args, "watch", None)
    if watch is None:
        return _show(args, db, watching=False)
    try:
        while True:
            if sys.stdout.isatty():
                sys.stdout.write("\x1b[H\x1b[2J")  # clear the screen: the table in place
            now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S")
            print(f"{now}, every {watch:g} s (Ctrl-C to stop)")
            _show(args, db, watching=True)
            sys.stdout.flush()
            sys.stderr.flush()
            time.sleep(watch)
    except KeyboardInterrupt:
        return 0


def _show(args: argparse.Namespace, db: Database, *, watching: bool) -> int:
    model, symbols = getattr(args, "model", None), getattr(args, "symbols", None)
    entries, lines, warnings = collect(
        db, getattr(args, "store", None), model=model, symbols=symbols
    )
    if not entries:
        given = [f"--model {model}"] if model else []
        given += [f"--symbols {' '.join(symbols)}"] if symbols else []
        if given and not watching:
            raise StudyError(f"no study of {' '.join(given)} in {db.label}")
        print(f"no studies {'of ' + ' '.join(given) + ' ' if given else ''}in {db.label}")
        return 0
    if getattr(args, "json", False):
        sys.stdout.write(json_entries(entries))
        return 0
    if getattr(args, "wide", False):
        for line in format_table(HEADER, wide_rows(entries)):
            print(line)
        lines = [*wide_lines(entries), *lines]
    else:
        for line in compact_lines(entries):
            print(line)
    lines = [*protocol_lines(entries), *lines]
    if lines:
        print()
        for line in dict.fromkeys(lines):
            print(line)
    if warnings:
        sys.stdout.flush()
        print(file=sys.stderr)
        for line in warnings:
            print(line, file=sys.stderr)
    return 0
