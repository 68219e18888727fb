"""The Toto two-stage evaluator: same distribution as the reference forecaster, seeds, no
look-ahead, batching, and the bounded stage-1 cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from scipy.stats import ks_2samp

from objectives.bars import Bars
from objectives.evaluator import load_backend
from objectives.exceptions import DataError
from objectives.toto import TotoBackend, TotoSettings, load, parse

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "toto"
TINY = FIXTURES / "tiny"
REFERENCE = load_file(str(FIXTURES / "samples.safetensors"))
CONFIG = {"num_samples": 256, "aggregate": "trimmed_mean_0.10"}


def make_bars(close: np.ndarray, symbol: str = "TEST") -> Bars:
    close = np.asarray(close, dtype=np.float64)
    prices = np.stack([close, close * 1.01, close * 0.99, close], axis=1)
    stamps = np.datetime64("2020-01-01", "ns") + np.arange(len(close)) * np.timedelta64(1, "D")
    return Bars(symbol, stamps, prices, None, None)


def random_walk(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 100.0 * np.exp(np.cumsum(0.02 * rng.standard_normal(n)))


@pytest.fixture(scope="module")
def backend() -> TotoBackend:
    return load(str(TINY))


@pytest.fixture(scope="module")
def bars() -> Bars:
    return make_bars(random_walk(300, seed=5))


def fresh(backend: TotoBackend, cache_bytes: int = 1 << 20) -> TotoBackend:
    return TotoBackend(backend.model, backend.checkpoint_id, cache_bytes=cache_bytes)


def test_load_backend_finds_toto_and_ignores_the_tokenizer() -> None:
    loaded = load_backend("toto", checkpoint=str(TINY), tokenizer="ignored")
    assert loaded.name == "toto" and loaded.checkpoint_id == str(TINY)


@pytest.mark.parametrize("length", [150, 400])
def test_draws_follow_the_reference_forecasters_distribution(
    backend: TotoBackend, length: int
) -> None:
    series = REFERENCE[f"len{length}.series"].double().numpy()
    reference = REFERENCE[f"len{length}.samples"].double().numpy()
    assert len(reference) >= 20_000
    settings = TotoSettings(20_000, parse("mean"), max_context=4096)
    ours = backend.evaluator(make_bars(series)).samples(np.array([length]), settings, 11)[0]
    assert ks_2samp(ours.numpy(), reference).pvalue > 0.01
    # the test has power: a shift of a tenth of the spread is rejected
    shifted = ours.numpy() + 0.1 * reference.std()
    assert ks_2samp(shifted, reference).pvalue < 1e-6


def test_same_seed_same_forecast_and_another_seed_another(backend: TotoBackend, bars) -> None:
    evaluator = backend.evaluator(bars)
    targets = np.arange(260, 280)
    a = evaluator.forecast_close(targets, CONFIG, seed=1)
    assert np.array_equal(a, evaluator.forecast_close(targets, CONFIG, seed=1))
    assert not np.array_equal(a, evaluator.forecast_close(targets, CONFIG, seed=2))
    assert a.shape == (20,) and np.isfinite(a).all()


def test_a_windows_forecast_does_not_depend_on_the_other_targets(backend, bars) -> None:
    evaluator = backend.evaluator(bars)
    together = evaluator.forecast_close(np.arange(250, 290), CONFIG, seed=4)
    alone = evaluator.forecast_close(np.array([270]), CONFIG, seed=4)
    assert together[20] == alone[0]


def test_changing_rows_from_the_target_on_does_not_move_its_forecast(backend, bars) -> None:
    target = 200
    changed = bars.close.copy()
    changed[target:] *= np.linspace(0.5, 3.0, len(changed) - target)
    before = backend.evaluator(bars).forecast_close(np.array([target, 299]), CONFIG, seed=9)
    after = backend.evaluator(make_bars(changed)).forecast_close(
        np.array([target, 299]), CONFIG, seed=9
    )
    assert before[0] == after[0]
    assert before[1] != after[1]  # a later window does see the change


def test_the_next_unseen_bar_can_be_forecast(backend, bars) -> None:
    assert np.isfinite(backend.evaluator(bars).forecast_close(np.array([300]), CONFIG, 0)).all()


def test_a_forecast_is_bit_for_bit_the_same_alone_together_and_after_others(
    backend: TotoBackend, bars
) -> None:
    targets = np.array([1, 30, 64, 65, 100, 128, 129, 200, 256, 299])  # several padded lengths
    together = fresh(backend).evaluator(bars).forecast_close(targets, CONFIG, 5)
    alone = [fresh(backend).evaluator(bars).forecast_close(targets[i : i + 1], CONFIG, 5)[0]
             for i in range(len(targets))]  # fmt: skip
    np.testing.assert_array_equal(together, alone)
    history = fresh(backend).evaluator(bars)
    history.forecast_close(targets[::3], {"num_samples": 64, "aggregate": "median"}, 5)
    np.testing.assert_array_equal(together, history.forecast_close(targets, CONFIG, 5))


def test_the_context_cap_limits_what_the_model_sees(backend: TotoBackend, bars) -> None:
    evaluator = fresh(backend).evaluator(bars)
    capped = evaluator.marginals([299], 64)[0]
    tail_only = make_bars(np.concatenate([np.full(235, 7.0), bars.close[235:]]))
    torch.testing.assert_close(fresh(backend).evaluator(tail_only).marginals([299], 64)[0], capped)
    assert not torch.allclose(evaluator.marginals([299], 4096)[0], capped)


def test_warm_trials_reuse_stage1_without_running_the_model(backend: TotoBackend, bars) -> None:
    own = fresh(backend)
    evaluator = own.evaluator(bars)
    evaluator.forecast_close(np.arange(250, 270), CONFIG, seed=0)
    misses = own.stage1_cache.misses
    calls = []
    handle = own.model.register_forward_hook(lambda *args: calls.append(1))
    try:
        for n in (64, 4096):
            evaluator.forecast_close(np.arange(250, 270), {**CONFIG, "num_samples": n}, seed=3)
    finally:
        handle.remove()
    assert not calls and own.stage1_cache.misses == misses


def test_the_stage1_cache_stays_within_its_byte_budget(backend: TotoBackend, bars) -> None:
    row_bytes = (4 * backend.model.config.k_components + 2) * 8
    own = fresh(backend, cache_bytes=10 * row_bytes)
    own.evaluator(bars).forecast_close(np.arange(200, 260), CONFIG, seed=0)
    assert len(own.stage1_cache) == 10 and own.stage1_cache.bytes <= 10 * row_bytes


def test_bad_targets_and_configs_are_refused(backend: TotoBackend, bars) -> None:
    evaluator = backend.evaluator(bars)
    with pytest.raises(DataError, match="outside"):
        evaluator.forecast_close(np.array([0]), CONFIG, 0)
    with pytest.raises(DataError, match="outside"):
        evaluator.forecast_close(np.array([301]), CONFIG, 0)
    with pytest.raises(DataError, match="num_samples"):
        evaluator.forecast_close(np.array([10]), {"aggregate": "mean"}, 0)
    with pytest.raises(ValueError, match="malformed aggregate"):
        evaluator.forecast_close(np.array([10]), {"num_samples": 8, "aggregate": "avg"}, 0)
