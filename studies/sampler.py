"""Seeded TPE: each trial's proposals are drawn with a seed from (study seed, trial number).

Re-seeding per trial keeps a single worker's search reproducible while N workers, holding
different trial numbers, never propose the same startup points; ``constant_liar`` keeps TPE
from proposing points near trials that are still running. (The *sampling* seed of a trial's
forecasts is the study seed itself: common random numbers, see :mod:`studies.objective`.)
"""

from __future__ import annotations

import numpy as np
import optuna

N_STARTUP_TRIALS = 10


def pruner() -> optuna.pruners.BasePruner:
    """A median rule across validation-window chunks: after 10 finished trials, a trial whose
    running MAE after any chunk (the first included) is worse than the median of earlier trials
    at that chunk stops. With common random numbers every trial sees the same draws, so the
    comparison is fair. Chosen by measurement (docs/design-notes.md, "What a cold Kronos trial
    costs, and pruning"): on base-size Kronos, BTCUSD, 200 trials, it cut the trials' wall time
    1.6x with the same confirmed winner; successive halving, the Wilcoxon pruner and a median
    rule after 3 startup trials pruned more early and drove TPE into 400-512-token contexts,
    each new one a cold pass per window."""
    return optuna.pruners.MedianPruner(n_startup_trials=10, n_warmup_steps=0)


def sampler_for_trial(study_seed: int, trial_number: int) -> optuna.samplers.TPESampler:
    seed = int(np.random.SeedSequence([study_seed, trial_number]).generate_state(1)[0])
    return optuna.samplers.TPESampler(
        seed=seed, n_startup_trials=N_STARTUP_TRIALS, constant_liar=True
    )
