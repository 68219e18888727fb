"""The paired test: Diebold-Mariano with the Harvey-Leybourne-Newbold correction, recomputed here
from its definition (numpy loops and scipy's Student t), its Newey-West terms for h > 1, its
degenerate cases, and the per-target loss whose mean is the objective."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from objectives.forecasts import Draws
from objectives.metrics import METRIC_NAMES, Outcome, score_outcome
from objectives.significance import (
    diebold_mariano,
    long_run_variance,
    per_target_loss,
    t_two_sided,
)


def reference_dm(a: np.ndarray, b: np.ndarray, h: int) -> tuple[float, float]:
    """``(DM_HLN, p)`` from the definition, term by term: autocovariances divided by n,
    Bartlett weights ``1 - k / h`` up to lag ``h - 1``, the HLN factor, t(n-1) two-sided."""
    d = [float(x) - float(y) for x, y in zip(a, b, strict=True)]
    n = len(d)
    mean = sum(d) / n
    gamma = [sum((d[t] - mean) * (d[t - k] - mean) for t in range(k, n)) / n for k in range(h)]
    variance = gamma[0] + 2 * sum((1 - k / h) * gamma[k] for k in range(1, h))
    dm = mean / math.sqrt(variance / n)
    hln = dm * math.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    return hln, float(2 * stats.t.sf(abs(hln), n - 1))


def losses(n: int, seed: int, edge: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    b = np.abs(rng.standard_normal(n))
    a = np.abs(b * (1 - 0.5 * edge) + rng.normal(0, 0.2, n))
    return a, b


@pytest.mark.parametrize(
    ("n", "h"), [(n, h) for n in (5, 12, 20) for h in (1, 2, 3, 7) if n > h]
)  # n <= h is undefined: tested with the degenerate cases
def test_the_statistic_and_p_value_are_the_definitions(n: int, h: int) -> None:
    a, b = losses(n, seed=n * 10 + h, edge=0.2)
    result = diebold_mariano(a, b, h)
    stat, p = reference_dm(a, b, h)
    assert result.dm_stat == pytest.approx(stat, rel=1e-12)
    assert result.p_value == pytest.approx(p, rel=1e-9, abs=1e-14)
    assert result.mae_ratio == pytest.approx(a.mean() / b.mean(), rel=1e-12)
    assert result.n == n
    assert f"lags h-1 = {h - 1}" in result.method


def test_a_small_hand_computed_case() -> None:
    """Four targets, one step: d = (-1, -2, 0, -1), mean -1, gamma_0 = (0 + 1 + 1 + 0) / 4."""
    a, b = np.array([1.0, 1.0, 3.0, 2.0]), np.array([2.0, 3.0, 3.0, 3.0])
    dm = -1 / math.sqrt(0.5 / 4)
    hln = dm * math.sqrt((4 + 1 - 2 + 0) / 4)  # sqrt((n - 1) / n) at h = 1
    result = diebold_mariano(a, b, 1)
    assert result.dm_stat == pytest.approx(hln, rel=1e-12)
    assert result.p_value == pytest.approx(2 * stats.t.sf(abs(hln), 3), rel=1e-12)
    assert result.mae_ratio == pytest.approx(7 / 11, rel=1e-12)


def test_the_hln_correction_is_the_factor_between_it_and_the_plain_statistic() -> None:
    a, b = losses(20, seed=4, edge=0.3)
    for h in (1, 4):
        d = a - b
        plain = d.mean() / math.sqrt(long_run_variance(d, h - 1) / 20)
        factor = math.sqrt((20 + 1 - 2 * h + h * (h - 1) / 20) / 20)
        assert diebold_mariano(a, b, h).dm_stat == pytest.approx(plain * factor, rel=1e-12)
    assert math.sqrt((20 + 1 - 2) / 20) == pytest.approx(math.sqrt(19 / 20))


def test_newey_west_terms_enter_only_when_the_horizon_is_above_one() -> None:
    rng = np.random.default_rng(0)
    shocks = rng.standard_normal(31)
    d = shocks[1:] + 0.9 * shocks[:-1]  # MA(1): positively autocorrelated, as 2-step errors
    e = d - d.mean()
    gamma_0 = float(e @ e) / 30
    gamma_1 = float(e[1:] @ e[:-1]) / 30
    gamma_2 = float(e[2:] @ e[:-2]) / 30
    assert long_run_variance(d, 0) == pytest.approx(gamma_0, rel=1e-12)
    assert long_run_variance(d, 1) == pytest.approx(gamma_0 + 2 * 0.5 * gamma_1, rel=1e-12)
    assert long_run_variance(d, 2) == pytest.approx(
        gamma_0 + 2 * (2 / 3) * gamma_1 + 2 * (1 / 3) * gamma_2, rel=1e-12
    )
    a, b = d + 5, np.full(30, 5.0)
    one, two = diebold_mariano(a, b, 1), diebold_mariano(a, b, 2)
    assert one.dm_stat is not None and two.dm_stat is not None
    assert abs(two.dm_stat) < abs(one.dm_stat)  # the overlap widens the variance
    assert long_run_variance(d[:3], 10) == pytest.approx(long_run_variance(d[:3], 2))  # n - 1


@pytest.mark.parametrize("dof", [1, 2, 3, 4, 5, 8, 19, 20, 59, 119, 240])
def test_the_student_t_tail_is_scipys(dof: int) -> None:
    for t in (0.0, 0.01, 0.5, -1.3, 2.0, 2.093, 4.0, -9.5, 40.0):
        assert t_two_sided(t, dof) == pytest.approx(2 * stats.t.sf(abs(t), dof), abs=1e-13)
    assert t_two_sided(math.inf, dof) == 0.0
    with pytest.raises(ValueError):
        t_two_sided(1.0, 0)


def test_degenerate_cases_have_a_defined_result_and_are_json() -> None:
    same = np.array([0.1, 0.2, 0.3, 0.4])
    cases = {
        "no targets": (np.array([]), np.array([]), 1, None, 1.0),
        "one target": (np.array([1.0]), np.array([2.0]), 1, None, 1.0),
        "all differences zero": (same, same.copy(), 1, None, 1.0),
        "no more targets than the horizon": (same, same + 1, 4, None, 1.0),
        "a non-finite loss": (np.array([1.0, np.nan, 2.0]), np.ones(3), 1, None, 1.0),
        "every difference the same": (same, same + 0.5, 1, None, 0.0),
    }
    for name, (a, b, h, stat, p) in cases.items():
        result = diebold_mariano(a, b, h)
        assert (result.dm_stat, result.p_value) == (stat, p), name
        json.dumps(result.as_dict(), allow_nan=False)  # no NaN, no infinity
    assert diebold_mariano(same, same.copy()).mae_ratio == 1.0
    assert diebold_mariano(same, np.zeros(4)).mae_ratio is None  # the comparator's loss is 0
    assert diebold_mariano(same, np.zeros(4)).dm_stat is not None
    with pytest.raises(ValueError, match="differ in length"):
        diebold_mariano(same, same[:3])


def test_a_clear_edge_is_significant_and_noise_is_not() -> None:
    a, b = losses(40, seed=1, edge=1.0)
    better = diebold_mariano(a, b)
    assert better.dm_stat is not None and better.dm_stat < 0 and better.p_value < 0.01
    worse = diebold_mariano(b, a)
    assert worse.dm_stat == pytest.approx(-better.dm_stat) and worse.p_value == better.p_value
    rng = np.random.default_rng(7)
    p = [diebold_mariano(*np.abs(rng.standard_normal((2, 20)))).p_value for _ in range(400)]
    assert 0.02 < np.mean(np.asarray(p) < 0.05) < 0.09  # about the level under the null


def _outcome(W: int, C: int, H: int, seed: int) -> Outcome:
    rng = np.random.default_rng(seed)
    last = rng.uniform(50, 150, (W, C))
    actual = last[:, :, None] * np.cumprod(1 + rng.normal(0, 0.02, (W, C, H)), axis=2)
    points = last[:, :, None] * np.cumprod(1 + rng.normal(0, 0.02, (W, C, H)), axis=2)
    draws = tuple(
        Draws(points[w][None] * (1 + rng.normal(0, 0.01, (8, C, H))), np.ones(8)) for w in range(W)
    )
    return Outcome(actual, last, points, draws, np.arange(200, 200 + W))


@pytest.mark.parametrize("path_score", ["mean", "last"])
def test_the_per_target_loss_averages_to_the_objective(path_score: str) -> None:
    columns = ("close", "high", "low")
    metrics = score_outcome(_outcome(12, 3, 4, seed=2), columns, path_score)
    for name in METRIC_NAMES:
        loss = per_target_loss(metrics, name, path_score)
        naive = per_target_loss(metrics, name, path_score, naive=True)
        assert loss.shape == naive.shape == (12,)
        if name == "direction_accuracy":  # the loss is 1 - hit
            assert loss.mean() == pytest.approx(1 - metrics.value(name), rel=1e-12)
            assert naive.mean() == pytest.approx(1 - metrics.naive(name), rel=1e-12)
        else:
            assert loss.mean() == pytest.approx(metrics.value(name), rel=1e-12)
            assert naive.mean() == pytest.approx(metrics.naive(name), rel=1e-12)


def test_the_one_step_close_losses_are_the_absolute_errors() -> None:
    o = _outcome(10, 1, 1, seed=3)
    metrics = score_outcome(o, ("close",))
    f, a, last = o.points[:, 0, 0], o.actual[:, 0, 0], o.last[:, 0]
    np.testing.assert_allclose(per_target_loss(metrics, "price_mae"), np.abs(f - a), rtol=1e-13)
    np.testing.assert_allclose(per_target_loss(metrics, "price_mae", naive=True), np.abs(last - a),
                               rtol=1e-13)  # fmt: skip
    np.testing.assert_allclose(
        per_target_loss(metrics, "return_mae"), np.abs(f / last - a / last), rtol=1e-12
    )
