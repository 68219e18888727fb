"""Paired tests of two forecasts of the same targets: could this many bars show the difference?

:func:`diebold_mariano` is the Diebold-Mariano test of equal expected loss with the
Harvey-Leybourne-Newbold small-sample correction, two-sided, against Student's t with
``n - 1`` degrees of freedom. For per-target losses ``a`` (the winner) and ``b`` (the comparator)
of ``n`` targets, ``d = a - b``:

* ``gamma_k = sum_{t > k} (d_t - mean d)(d_{t-k} - mean d) / n`` (divided by ``n``, not
  ``n - k``: ``gamma_0`` is the mean squared deviation);
* ``V = gamma_0 + 2 sum_{k=1}^{L} (1 - k / (L + 1)) gamma_k`` with ``L = h - 1`` Newey-West
  (Bartlett) lags for an ``h``-step forecast, whose errors overlap for ``h - 1`` targets
  (``L = 0``, ``V = gamma_0``, at one step; ``L`` is at most ``n - 1``);
* ``DM = mean d / sqrt(V / n)``, ``DM_HLN = DM * sqrt((n + 1 - 2h + h (h - 1) / n) / n)``;
* ``p = 2 P(T_{n-1} > |DM_HLN|)``.

A negative statistic means the winner's loss is the lower. ``mae_ratio`` is the winner's mean
loss over the comparator's, the ratio of their objectives for the MAE metrics and ``crps``
(``direction_accuracy``: of their miss rates).

Degenerate cases have a defined result, never an exception nor a NaN (the record is JSON):

* fewer than 2 targets, no more targets than the horizon (``n <= h``: the correction is not
  defined), or a non-finite loss: ``dm_stat`` ``None``, ``p_value`` 1.0 (no evidence);
* every difference 0 (the same forecasts, or the same errors): ``dm_stat`` ``None``,
  ``p_value`` 1.0;
* every difference the same non-zero number (no variance, the sign is certain; equal to
  within a relative 1e-12, which rounding leaves): ``dm_stat`` ``None``, ``p_value`` 0.0;
* a comparator whose mean loss is 0 (or not finite): ``mae_ratio`` ``None``.

The Student-t tail is scipy's (``scipy.stats.t.sf``).

:func:`per_target_loss` turns a scoring's per-target values ``(W, C, H)`` into the loss of each
origin whose mean over origins is the window's value of the objective (the mean, or last step,
of the path, then the mean over the columns); a maximised metric's loss is ``1 - value``
(``direction_accuracy``: 1 - hit).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypedDict

import numpy as np
from scipy import stats

from objectives.metrics import METRICS, Metrics

#: the significance level of the one-line warnings (a warning, never a failure)
ALPHA = 0.05
#: relative spread below which differences count as equal (rounding, not variation)
_SAME = 1e-12


def method(horizon: int) -> str:
    """The test in words, as the record's ``method``."""
    lags = max(int(horizon) - 1, 0)
    return f"DM-HLN two-sided t(n-1), NW (Bartlett) lags h-1 = {lags}"


class PairedDict(TypedDict):
    """:meth:`PairedTest.as_dict`: the record's keys of a paired test."""

    mae_ratio: float | None
    dm_stat: float | None
    p_value: float
    method: str


@dataclass(frozen=True)
class PairedTest:
    """One paired comparison: the winner (``a``) against a comparator (``b``)."""

    mae_ratio: float | None  # mean loss of a / mean loss of b
    dm_stat: float | None  # the HLN-corrected statistic; negative: a's loss is lower
    p_value: float  # two-sided
    method: str
    n: int  # targets

    def as_dict(self) -> PairedDict:
        """The record's ``{mae_ratio, dm_stat, p_value, method}``."""
        return {"mae_ratio": self.mae_ratio, "dm_stat": self.dm_stat, "p_value": self.p_value,
                "method": self.method}  # fmt: skip


def diebold_mariano(a: np.ndarray, b: np.ndarray, horizon: int = 1) -> PairedTest:
    """The DM-HLN test of per-target losses ``a`` (the winner) against ``b`` on the same
    targets, in target order, for ``horizon``-step forecasts (module docstring)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"paired losses differ in length: {a.size} and {b.size}")
    h = max(int(horizon), 1)
    n = int(a.size)
    how = method(h)
    if n == 0 or not (np.isfinite(a).all() and np.isfinite(b).all()):
        return PairedTest(None, None, 1.0, how, n)
    ratio = _ratio(float(np.mean(a)), float(np.mean(b)))
    d = a - b
    if n < 2 or n <= h or not np.any(d != 0):
        return PairedTest(ratio, None, 1.0, how, n)
    mean = float(np.mean(d))
    if np.ptp(d) <= _SAME * np.max(np.abs(d)):  # every difference the same: the sign is certain
        return PairedTest(ratio, None, 0.0, how, n)
    variance = long_run_variance(d, h - 1)  # > 0 once the differences vary (Bartlett weights)
    if not variance > 0:  # a guard against rounding
        return PairedTest(ratio, None, 1.0, how, n)
    dm = mean / math.sqrt(variance / n)
    stat = dm * math.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    return PairedTest(ratio, stat, t_two_sided(stat, n - 1), how, n)


def long_run_variance(d: np.ndarray, lags: int) -> float:
    """``gamma_0 + 2 sum_{k=1}^{lags} (1 - k / (lags + 1)) gamma_k``, each autocovariance
    divided by ``n`` (Newey-West; ``lags`` capped at ``n - 1``)."""
    d = np.asarray(d, dtype=np.float64)
    n = d.size
    e = d - d.mean()
    lags = min(max(int(lags), 0), n - 1)
    total = float(np.dot(e, e)) / n
    for k in range(1, lags + 1):
        total += 2.0 * (1.0 - k / (lags + 1)) * float(np.dot(e[k:], e[:-k])) / n
    return total


def t_two_sided(t: float, dof: int) -> float:
    """``P(|T| >= |t|)`` for Student's t with ``dof >= 1`` degrees of freedom (scipy's survival
    function, which keeps small p-values exact)."""
    if dof < 1:
        raise ValueError(f"Student's t needs at least 1 degree of freedom, got {dof}")
    if not math.isfinite(t):
        return 0.0
    return float(min(2.0 * stats.t.sf(abs(t), dof), 1.0))


def per_target_loss(
    metrics: Metrics, name: str, path_score: str = "mean", *, naive: bool = False
) -> np.ndarray:
    """Each origin's loss under metric ``name`` (the forecast's, or naive's with ``naive``),
    ``(W,)``: the path's mean (``path_score`` ``mean``) or last step, then the mean over the
    columns, so that its mean is the window's value; ``1 - value`` for a maximised metric."""
    values = (metrics.naive_per_target if naive else metrics.per_target).get(name)
    if values is None:
        raise KeyError(f"the scoring kept no per-target {'naive ' if naive else ''}{name}")
    values = np.asarray(values, dtype=np.float64)
    along_path = values.mean(axis=2) if path_score == "mean" else values[:, :, -1]
    loss = along_path.mean(axis=1)
    return 1.0 - loss if METRICS[name].direction == "maximize" else loss


def _ratio(a: float, b: float) -> float | None:
    return a / b if b != 0 and math.isfinite(a) and math.isfinite(b) else None
