"""One line per study: its task (name, columns, horizon) and objective, trials by state, the
first-pass and confirmed validation value of the objective, naive and test values in the same
units with the test's price skill, and the export; under the table one line per exported winner
with every metric on the test window; one warning per exported winner that does not beat the
naive forecast on validation."""

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
    "export",
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


def study_rows(db: Database) -> tuple[list[list[str]], list[str]]:
    """Rows for :data:`HEADER` and the lines to print under them (metrics, then warnings)."""
    rows, warnings, details = [], [], []
    for summary in optuna.get_all_study_summaries(db.optuna, include_best_trial=True):
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
                str(attrs.get("export_path", "-")),
            ]
        )
        if winner and not winner["validation"]["beats_naive"]:
            from optimise.commands import naive_warning

            validation = Scores.parse(winner["validation"], "the winner attr's validation")
            metric = winner.get("objective") or DEFAULT_OBJECTIVE
            warnings.append(
                naive_warning(winner["study_name"], winner["trial_number"], metric, validation)
            )
    return rows, details + warnings


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
