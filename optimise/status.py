"""One line per study: its task (name, columns, horizon) and objective, trials by state, the
first-pass and confirmed validation value of the objective, naive and test values in the same
units with the test's price skill, the test's paired-test p-values against naive and the trading
code's defaults, and the export; under the table one line per exported winner with every metric
on the test window and one with its paired tests; one warning per exported winner that does not
beat the naive forecast on validation, and one per winner whose test edge over naive is not
significant at 5%."""

from __future__ import annotations

import optuna

from storage.database import Database
from storage.ledger import interrupted_count, trial_counts
from storage.optuna_internals import study_id
from storage.record import DEFAULT_OBJECTIVE, Scores

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
    "first-pass val",
    "confirmed val",
    "naive val",
    "test",
    "naive test",
    "test skill",
    "test p naive/default",
    "export",
    "live",
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


def study_rows(db: Database, store: str | None = None) -> tuple[list[list[str]], list[str]]:
    """Rows for :data:`HEADER` and the lines to print under them (metrics, live records that
    are foreign, then warnings). ``store``: where to look for the live records (default: the
    store each study was exported to)."""
    rows, warnings, details = [], [], []
    live_lines: dict[str, str] = {}
    summaries = optuna.get_all_study_summaries(db.optuna, include_best_trial=True)
    for summary in summaries:
        counts = trial_counts(db.engine, study_id(summary))
        interrupted = interrupted_count(db.engine, study_id(summary))
        attrs = summary.user_attrs
        best = summary.best_trial
        winner = attrs.get("winner")
        metric = str(attrs.get("metric") or DEFAULT_OBJECTIVE)
        if winner:
            line = metrics_line(summary.study_name, winner)
            if line:
                details.append(line)
        rows.append(
            [
                summary.study_name,
                task_label(attrs.get("task")),
                metric,
                str(counts.get("COMPLETE", 0)),
                str(counts.get("PRUNED", 0)),
                str(counts.get("RUNNING", 0)),
                str(counts.get("WAITING", 0)),
                str(counts.get("FAIL", 0) - interrupted),
                str(interrupted),
                f"{best.value:.6g}" if best is not None else "-",
                _confirmed(winner, metric),
                _fmt(best.user_attrs.get(f"naive_{metric}")) if best is not None else "-",
                _fmt(Scores.parse(winner["test"], "test").metric(metric)) if winner else "-",
                _fmt(Scores.parse(winner["test"], "test").naive(metric)) if winner else "-",
                f"{winner['test']['skill']:+.3f}" if winner else "-",
                _p_values(winner),
                str(attrs.get("export_path", "-")),
                live_cell(summary.study_name, attrs, store, live_lines),
            ]
        )
        if winner and not winner["validation"]["beats_naive"]:
            from optimise.commands import naive_warning

            validation = Scores.parse(winner["validation"], "the winner attr's validation")
            metric = winner.get("objective") or DEFAULT_OBJECTIVE
            warnings.append(
                naive_warning(winner["study_name"], winner["trial_number"], metric, validation)
            )
        if winner:
            line = paired_line(summary.study_name, winner)
            if line:
                details.append(line)
            edge = _edge_warning(winner)
            if edge:
                warnings.append(edge)
    return rows, details + list(live_lines.values()) + period_lines(summaries) + warnings


def live_cell(name: str, attrs: dict, store: str | None, lines: dict[str, str]) -> str:
    """Whether the study's record is the live ``<model>/<SYMBOL>.json`` of its store: ``yes``;
    ``no: <study> is live``; ``no: foreign``, ``no: none`` or ``unreadable``; ``-`` for a
    study never exported. A foreign live record adds one line (once per file) to ``lines``."""
    from pathlib import Path

    from storage.exceptions import StorageError
    from storage.foreign import Foreign
    from storage.store import read_stored, record_path

    model, symbol = attrs.get("model"), attrs.get("symbol")
    root = store or attrs.get("store")
    exported = attrs.get("export_path")
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
    if live.metadata.study_name == name and live.metadata.study_uid == attrs.get("study_uid"):
        return "yes"
    return f"no: {live.metadata.study_name} is live"


def period_lines(summaries: list[optuna.study.StudySummary]) -> list[str]:
    """One line per symbol's chain of periods (studies refreshed after bars were appended):
    each period's date and study, oldest first, and which one is current."""
    from studies.context import PERIOD_ATTR
    from studies.refresh import chains, split_name

    attrs = {s.study_name: s.user_attrs for s in summaries}
    lines = []
    for base, names in sorted(chains(attrs).items()):
        if len(names) < 2:
            continue
        dates = ", ".join(
            f"{attrs[n].get(PERIOD_ATTR) or split_name(n)[1] or '?'} ({n})" for n in names
        )
        lines.append(f"  {base} periods: {dates}; current {names[-1]}")
    return lines


def paired_line(name: str, winner: dict) -> str | None:
    """An exported winner's paired tests (DM-HLN), both windows, one line; ``None`` for a
    winner exported before them."""
    cells = []
    for window in ("validation", "test"):
        scores = Scores.parse(winner[window], window)
        for against, paired in (("naive", scores.vs_naive), ("default", scores.vs_default)):
            if paired is not None:
                ratio = "-" if paired.mae_ratio is None else f"{paired.mae_ratio:.4g}"
                cells.append(f"{window} vs {against} ratio {ratio} p {paired.p_value:.3g}")
    return f"  {name} paired: {', '.join(cells)}" if cells else None


def _p_values(winner: dict | None) -> str:
    """``0.031/0.42``: the test window's p-values against naive and the trading default."""
    if not winner:
        return "-"
    test = Scores.parse(winner["test"], "test")
    if test.vs_naive is None and test.vs_default is None:
        return "-"
    return "/".join(
        "-" if paired is None else f"{paired.p_value:.2g}"
        for paired in (test.vs_naive, test.vs_default)
    )


def _edge_warning(winner: dict) -> str | None:
    from optimise.commands import edge_warning

    test = Scores.parse(winner["test"], "the winner attr's test")
    metric = winner.get("objective") or DEFAULT_OBJECTIVE
    return edge_warning(winner["study_name"], winner["trial_number"], metric, test)


def _confirmed(winner: dict | None, metric: str) -> str:
    if not winner:
        return "-"
    value = Scores.parse(winner["validation"], "validation").metric(metric)
    se = winner.get("confirmed_se")
    se = se if isinstance(se, (int, float)) else (
        winner["confirmed_price_mae_se"] if metric == "price_mae" else None
    )  # fmt: skip
    spread = f" ± {se:.2g}" if isinstance(se, (int, float)) else ""
    return f"{_fmt(value)}{spread} (trial {winner['trial_number']})"


def _fmt(value: object) -> str:
    return f"{value:.6g}" if isinstance(value, (int, float)) else "-"
