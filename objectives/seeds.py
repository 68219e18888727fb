"""What a seed may be: one range for the study seed, ``forecast --seed`` and checkpoint seeds.

A study seed feeds ``numpy.random.SeedSequence`` (each target's generator, each trial's TPE
seed, each confirmation seed set), which takes non-negative integers only; a negative one is
refused there, at the first trial, after the study exists. Confirmation seed sets are 62-bit
integers that ``optimise forecast --seed`` must accept, and a seed is stored as a study attr, so
the range is one signed 64-bit integer's non-negative half.
"""

from __future__ import annotations

from objectives.exceptions import DataError

MAX_SEED = 2**63 - 1
SEED_RANGE = f"an integer from 0 to {MAX_SEED} (2**63 - 1)"


def check_seed(value: object) -> int:
    """``value`` as a seed, or :class:`DataError` saying what a seed is."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise DataError(f"seed {value!r} is not {SEED_RANGE}")
    return value
