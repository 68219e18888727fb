"""One line per study: trials by state, best validation MAE, naive MAE, test MAE, export."""

from __future__ import annotations

import optuna

from storage.ledger import Ledger, trial_counts
from storage.rdb import open_storage


def study_rows(url: str) -> list[list[str]]:
    storage = open_storage(url)
    ledger = Ledger(url)
    rows = []
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=True):
        counts = trial_counts(ledger.engine, summary._study_id)
        attrs = summary.user_attrs
        best = summary.best_trial
        tests = attrs.get("test_scores") or []
        latest = tests[-1] if tests else None
        rows.append(
            [
                summary.study_name,
                str(counts.get("COMPLETE", 0) + counts.get("PRUNED", 0)),
                str(counts.get("RUNNING", 0)),
                str(counts.get("WAITING", 0)),
                str(counts.get("FAIL", 0)),
                f"{best.value:.6g}" if best is not None else "-",
                _fmt(best.user_attrs.get("naive_price_mae")) if best is not None else "-",
                f"{latest['price_mae']:.6g} (trial {latest['trial_number']})" if latest else "-",
                str(attrs.get("export_path", "-")),
            ]
        )
    return rows


def _fmt(value: object) -> str:
    return f"{value:.6g}" if isinstance(value, (int, float)) else "-"
