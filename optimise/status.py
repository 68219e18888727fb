"""One line per study: trials by state, first-pass and confirmed validation MAE, naive and
test MAE with the test's naive MAE and skill, and the export; one warning per exported winner
that does not beat the naive forecast on validation."""

from __future__ import annotations

import optuna

from storage.database import Database
from storage.ledger import interrupted_count, trial_counts
from storage.optuna_internals import study_id
from storage.record import DEFAULT_OBJECTIVE, Scores

HEADER = [
    "study",
    "complete",
    "pruned",
    "running",
    "waiting",
    "fail",
    "interrupted",
    "best val MAE",
    "confirmed val MAE",
    "naive val",
    "test MAE",
    "naive test",
    "test skill",
    "export",
]


def study_rows(db: Database) -> tuple[list[list[str]], list[str]]:
    """Rows for :data:`HEADER` and the warnings to print under them."""
    rows, warnings = [], []
    for summary in optuna.get_all_study_summaries(db.optuna, include_best_trial=True):
        counts = trial_counts(db.engine, study_id(summary))
        interrupted = interrupted_count(db.engine, study_id(summary))
        attrs = summary.user_attrs
        best = summary.best_trial
        winner = attrs.get("winner")
        rows.append(
            [
                summary.study_name,
                str(counts.get("COMPLETE", 0)),
                str(counts.get("PRUNED", 0)),
                str(counts.get("RUNNING", 0)),
                str(counts.get("WAITING", 0)),
                str(counts.get("FAIL", 0) - interrupted),
                str(interrupted),
                f"{best.value:.6g}" if best is not None else "-",
                _confirmed(winner),
                _fmt(best.user_attrs.get("naive_price_mae")) if best is not None else "-",
                _fmt(winner["test"]["price_mae"]) if winner else "-",
                _fmt(winner["test"]["naive_price_mae"]) if winner else "-",
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
    return rows, warnings


def _confirmed(winner: dict | None) -> str:
    if not winner:
        return "-"
    value = winner["validation"]["price_mae"]
    return f"{value:.6g} ± {winner['confirmed_price_mae_se']:.2g} (trial {winner['trial_number']})"


def _fmt(value: object) -> str:
    return f"{value:.6g}" if isinstance(value, (int, float)) else "-"
