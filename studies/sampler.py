"""Seeded TPE: each trial's proposals are drawn with a seed from (study seed, trial number).

Re-seeding per trial keeps a single worker's search reproducible while N workers, holding
different trial numbers, never propose the same startup points; ``constant_liar`` keeps TPE
from proposing points near trials that are still running.
"""

from __future__ import annotations

import optuna

from objectives.evaluator import trial_seed

N_STARTUP_TRIALS = 10


def sampler_for_trial(study_seed: int, trial_number: int) -> optuna.samplers.TPESampler:
    return optuna.samplers.TPESampler(
        seed=trial_seed(study_seed, trial_number) % (2**32),
        n_startup_trials=N_STARTUP_TRIALS,
        constant_liar=True,
    )
