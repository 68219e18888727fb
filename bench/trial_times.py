"""Per-study trial timings from a storage: cold first trial, warm median and p90, model share.

.venv/bin/python bench/trial_times.py sqlite:///studies.db
"""

from __future__ import annotations

import sys

import numpy as np
import optuna


def main(url: str) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(
        "| study | trials | first trial (ms) | warm median (ms) | warm p90 (ms) "
        "| model per trial, median (ms) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for summary in optuna.get_all_study_summaries(url):
        study = optuna.load_study(study_name=summary.study_name, storage=url)
        trials = sorted(
            study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)), key=lambda t: t.number
        )
        ms = [1000 * (t.datetime_complete - t.datetime_start).total_seconds() for t in trials]
        model = [1000 * t.user_attrs["trial_cost_s"] for t in trials[1:]]  # the whole window
        print(
            f"| {summary.study_name} | {len(trials)} | {ms[0]:.0f} | {np.median(ms[1:]):.0f} "
            f"| {np.percentile(ms[1:], 90):.0f} | {np.median(model):.1f} |"
        )


if __name__ == "__main__":
    main(sys.argv[1])
