"""The Kronos two-stage evaluator against kronos-model-arch 0.1.0, and its search space."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
from scipy import stats

from models.kronos import load_kronos
from models.threads import intra_op_threads
from objectives.bars import Bars
from objectives.evaluator import load_backend
from objectives.exceptions import DataError
from objectives.kronos import KronosBackend, KronosSettings, KronosSpace
from objectives.kronos.sampling import draw, filtered_probs
from objectives.kronos.space import TRADING_BEST
from objectives.kronos.stages import (
    Stage1,
    denormalise,
    features,
    normalise,
    sample_window,
    sample_window_draws,
    stage1_tokens,
    time_features,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kronos"
CHECKPOINT = FIXTURES / "checkpoint"
SAMPLED = {
    "temperature": 1.0, "top_k": 0, "top_p": 0.95, "sample_count": 16, "max_context": 64,
    "clip": 2.0,
}  # fmt: skip


@pytest.fixture(scope="module")
def parity() -> dict[str, np.ndarray]:
    with np.load(FIXTURES / "parity.npz") as data:
        return dict(data)


@pytest.fixture(scope="module")
def backend() -> KronosBackend:
    return load_backend("kronos", checkpoint=str(CHECKPOINT))


def fixture_bars(parity: dict[str, np.ndarray]) -> Bars:
    return Bars(
        "BTCUSD",
        parity["eval__timestamps"].astype("datetime64[ns]"),
        parity["eval__prices"],
        parity["eval__volume"],
        None,
    )


def greedy(
    max_context: int, clip: float, sample_count: int, temperature: float = 1.0
) -> KronosSettings:
    return KronosSettings(
        temperature=temperature, top_k=1, top_p=1.0, sample_count=sample_count,
        max_context=max_context, clip=clip,
    )  # fmt: skip


@torch.no_grad()
def stage1(predictor, tokenizer, x: torch.Tensor, stamp: torch.Tensor, max_context: int):
    """Stage 1 of normalised contexts (B, L, 6) and time features (B, L, 5), as the evaluator
    runs it: tokenise, then everything after the tokenizer."""
    s1, s2 = tokenizer.encode(x)
    return stage1_tokens(predictor, tokenizer, s1, s2, stamp, max_context)


@pytest.mark.parametrize("name", ["longer", "shorter", "novolume"])
def test_greedy_forecasts_from_any_context_length_equal_the_reference(parity, name):
    c = {k.split("__")[1]: v for k, v in parity.items() if k.startswith(f"{name}__")}
    mc, clip, with_volume = c["settings"]
    n = len(c["prices"])
    kronos = load_kronos(CHECKPOINT)
    x = features(c["prices"], c["volume"] if with_volume else None, None)
    z, mean, std = normalise(x, clip)
    stamp = time_features(c["timestamps"][:n].astype("datetime64[ns]"))
    part = stage1(
        kronos.predictor,
        kronos.tokenizer,
        torch.from_numpy(z)[None],
        torch.from_numpy(stamp)[None],
        int(mc),
    )[0]
    window = Stage1(*part, mean, std)
    bar = sample_window(
        kronos.predictor, kronos.tokenizer, window, greedy(int(mc), clip, 4, 0.5),
        torch.Generator().manual_seed(0),
    )  # fmt: skip
    np.testing.assert_allclose(denormalise(bar, mean, std), c["greedy"], rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("setting", [0, 1])
def test_greedy_evaluator_forecasts_equal_the_reference_predictor_loop(parity, backend, setting):
    mc, clip = parity["eval__settings"][setting]
    evaluator = backend.evaluator(fixture_bars(parity))
    bars = evaluator.forecast_bars(parity["eval__targets"], greedy(int(mc), clip, 3), seed=1)
    np.testing.assert_allclose(bars, parity["eval__greedy"][setting], rtol=1e-5, atol=1e-4)
    close = evaluator.forecast_close(parity["eval__targets"], greedy(int(mc), clip, 3), seed=9)
    np.testing.assert_allclose(close, parity["eval__greedy"][setting][:, 3], rtol=1e-5)


def test_filtered_probabilities_equal_the_reference_for_every_filter(parity):
    logits = torch.from_numpy(parity["sampling__logits"])[None]
    for (temperature, top_k, top_p), expected in zip(
        parity["sampling__settings"], parity["sampling__probs"], strict=True
    ):
        probs = filtered_probs(logits, temperature, int(top_k), top_p)[0]
        np.testing.assert_allclose(probs.numpy(), expected, rtol=1e-5, atol=1e-7)


def chi_square_p(counts: np.ndarray, probs: np.ndarray) -> float:
    probs = probs.astype(np.float64)
    support = probs > 0
    assert counts[~support].sum() == 0, "a filtered-out token was drawn"
    expected = probs[support] / probs[support].sum() * counts.sum()
    return float(stats.chisquare(counts[support], expected).pvalue)


def test_sampled_tokens_follow_the_reference_distribution(parity):
    logits = torch.from_numpy(parity["sampling__logits"])[None]
    generator = torch.Generator().manual_seed(0)
    for (temperature, top_k, top_p), ref_probs, ref_counts in zip(
        parity["sampling__settings"],
        parity["sampling__probs"],
        parity["sampling__counts"],
        strict=True,
    ):
        probs = filtered_probs(logits, temperature, int(top_k), top_p)[0]
        ours = np.bincount(draw(probs, 20000, generator).numpy(), minlength=len(ref_probs))
        assert chi_square_p(ours, ref_probs) > 1e-3
        assert chi_square_p(ref_counts, probs.numpy()) > 1e-3


def test_a_warm_trial_reads_its_s2_logits_from_the_windows_table(backend, parity):
    evaluator = backend.evaluator(fixture_bars(parity))
    config = KronosSettings.from_config(
        {**SAMPLED, "sample_count": 500, "top_p": 1.0, "temperature": 1.5}
    )
    window = evaluator._windows([280], config)[0]
    v1 = backend.predictor.embedding.emb_s1.num_embeddings
    assert window.table is not None and window.table.shape[0] == v1  # every s1 token
    calls: list[tuple[int, ...]] = []
    original = backend.predictor.s2_logits

    def spy(last_hidden, kv, s1):
        calls.append(tuple(s1.shape))
        return original(last_hidden, kv, s1)

    backend.predictor.s2_logits = spy
    try:
        warm = sample_window(backend.predictor, backend.tokenizer, window, config,
                             torch.Generator().manual_seed(5))  # fmt: skip
        assert calls == []  # stage 2 of a warm trial: no s2 logits computed
        alone = dataclasses.replace(window, table=None)  # e.g. an older disk-cache entry
        again = sample_window(backend.predictor, backend.tokenizer, alone, config,
                              torch.Generator().manual_seed(5))  # fmt: skip
    finally:
        del backend.predictor.s2_logits
    assert calls == [(1, v1)]  # the table's one fixed shape, whatever was drawn
    np.testing.assert_array_equal(warm, again)


def test_the_same_seed_reproduces_a_sampled_forecast_cold_and_warm(parity):
    targets = parity["eval__targets"]
    first = load_backend("kronos", checkpoint=str(CHECKPOINT)).evaluator(fixture_bars(parity))
    cold = first.forecast_close(targets, SAMPLED, seed=11)
    warm = first.forecast_close(targets, SAMPLED, seed=11)
    other = load_backend("kronos", checkpoint=str(CHECKPOINT)).evaluator(fixture_bars(parity))
    np.testing.assert_array_equal(cold, warm)
    np.testing.assert_array_equal(cold, other.forecast_close(targets, SAMPLED, seed=11))
    assert not np.array_equal(cold, first.forecast_close(targets, SAMPLED, seed=12))


def test_a_window_forecast_does_not_depend_on_the_other_targets_or_the_cache(parity):
    """Bit for bit: each window is computed alone, whatever was scored before or beside it."""
    targets = parity["eval__targets"]
    fresh = lambda: load_backend("kronos", checkpoint=str(CHECKPOINT))  # noqa: E731
    together = fresh().evaluator(fixture_bars(parity)).forecast_close(targets, SAMPLED, seed=3)
    alone = [
        fresh().evaluator(fixture_bars(parity)).forecast_close(np.array([i]), SAMPLED, seed=3)[0]
        for i in targets[::-1]
    ]
    np.testing.assert_array_equal(together, alone[::-1])
    history = fresh().evaluator(fixture_bars(parity))
    for temperature, count in ((0.7, 32), (1.3, 100)):
        history.forecast_close(targets[::2], {**SAMPLED, "temperature": temperature,
                                              "sample_count": count}, seed=3)  # fmt: skip
    np.testing.assert_array_equal(together, history.forecast_close(targets, SAMPLED, seed=3))


def test_changing_rows_at_or_after_the_target_leaves_its_forecast_unchanged(parity):
    bars = fixture_bars(parity)
    i = 285
    fresh = lambda: load_backend("kronos", checkpoint=str(CHECKPOINT))  # noqa: E731
    before = fresh().evaluator(bars).forecast_close(np.array([i]), SAMPLED, seed=4)
    prices = bars.prices.copy()
    prices[i:] *= 3.0
    volume = bars.volume.copy()
    volume[i:] = 0.0
    timestamps = bars.timestamps.copy()
    timestamps[i:] += np.timedelta64(3, "h")
    changed = Bars(bars.symbol, timestamps, prices, volume, None)
    after = fresh().evaluator(changed).forecast_close(np.array([i]), SAMPLED, seed=4)
    np.testing.assert_array_equal(before, after)
    prices[i - 1] *= 1.5  # the last context row does move it
    moved = Bars(bars.symbol, timestamps, prices, volume, None)
    assert fresh().evaluator(moved).forecast_close(np.array([i]), SAMPLED, seed=4) != before


def test_the_next_unseen_bar_can_be_forecast(parity, backend):
    bars = fixture_bars(parity)
    forecast = backend.evaluator(bars).forecast_close(np.array([len(bars)]), SAMPLED, seed=0)
    assert np.isfinite(forecast).all()


def test_warm_trials_reuse_stage_one_and_the_caches_stay_bounded(parity):
    loaded = load_kronos(CHECKPOINT)
    small = KronosBackend(loaded, cache_bytes=200_000)
    evaluator = small.evaluator(fixture_bars(parity))
    targets = parity["eval__targets"]
    first = evaluator.forecast_close(targets, SAMPLED, seed=2)
    assert evaluator.forecast_close(targets, {**SAMPLED, "temperature": 0.3}, seed=2).shape == (6,)
    cache = small.stage1_cache
    assert cache.bytes <= cache.max_bytes or len(cache) == 1
    roomy = KronosBackend(loaded).evaluator(fixture_bars(parity))
    np.testing.assert_array_equal(first, roomy.forecast_close(targets, SAMPLED, seed=2))
    hits, misses = roomy.backend.stage1_cache.hits, roomy.backend.stage1_cache.misses
    roomy.forecast_close(targets, {**SAMPLED, "temperature": 0.3}, seed=2)
    assert roomy.backend.stage1_cache.hits - hits == len(targets)
    assert roomy.backend.stage1_cache.misses == misses


def test_clips_that_tokenise_the_context_alike_share_one_transformer_pass(parity):
    backend = KronosBackend(load_kronos(CHECKPOINT))
    evaluator = backend.evaluator(fixture_bars(parity))
    calls = []
    original = backend.predictor.hidden

    def spy(*args):
        calls.append(args[0].shape[0])
        return original(*args)

    backend.predictor.hidden = spy
    targets = parity["eval__targets"]
    # a window of 64 rows has |z| <= sqrt(63) < 10: clips 10 and 20 clip nothing
    loose = evaluator.forecast_close(targets, {**SAMPLED, "clip": 10.0}, seed=6)
    held = backend.stage1_cache.bytes
    looser = evaluator.forecast_close(targets, {**SAMPLED, "clip": 20.0}, seed=6)
    assert backend.stage1_cache.bytes == held  # the second clip's keys alias the same passes
    tight = evaluator.forecast_close(targets, {**SAMPLED, "clip": 0.5}, seed=6)
    del backend.predictor.hidden
    np.testing.assert_array_equal(loose, looser)
    assert sum(calls) == 2 * len(targets)  # the 0.5 clip changes the tokens: a second pass
    assert not np.array_equal(loose, tight)


def test_bad_configs_and_targets_are_refused_with_a_clear_message(parity, backend):
    evaluator = backend.evaluator(fixture_bars(parity))
    with pytest.raises(DataError, match="temperature must be positive"):
        evaluator.forecast_close(np.array([280]), {**SAMPLED, "temperature": 0}, seed=0)
    with pytest.raises(DataError, match="lacks 'clip'"):
        evaluator.forecast_close(
            np.array([280]), {k: v for k, v in SAMPLED.items() if k != "clip"}, seed=0
        )
    with pytest.raises(DataError, match="outside"):
        evaluator.forecast_close(np.array([0]), SAMPLED, seed=0)


def test_the_known_good_setting_is_the_trading_best_with_its_inert_top_p_dropped():
    space = KronosSpace()
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    for params in space.known_good():
        study.enqueue_trial(params)
    trial = study.ask()
    config = space.suggest(trial)
    assert config.to_config() == {**TRADING_BEST, "top_p": 1.0}
    assert trial.params["filter"] == "top_k" and "top_p" not in trial.params
    study.tell(trial, 1.0)
    assert space.from_params(study.trials[0].params) == config


def test_only_the_active_filter_parameter_is_sampled():
    space = KronosSpace()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    kinds = set()
    for _ in range(40):
        trial = study.ask()
        config = space.suggest(trial).to_config()
        kinds.add(trial.params["filter"])
        if trial.params["filter"] == "top_k":
            assert "top_p" not in trial.params and config["top_p"] == 1.0
            assert 1 <= config["top_k"] <= 64
        else:
            assert "top_k" not in trial.params and config["top_k"] == 0
            assert 0.5 <= config["top_p"] <= 1.0
        assert 0.05 <= config["temperature"] <= 1.5 and 1 <= config["sample_count"] <= 512
        assert 64 <= config["max_context"] <= 512 and 0.5 <= config["clip"] <= 5.0
        study.tell(trial, 0.0)
        assert space.from_params(trial.params).to_config() == config
    assert kinds == {"top_k", "top_p"}
    assert json.loads(json.dumps(space.describe()))["params"]["top_p"]["when"] == "filter=top_p"


def test_stage_two_does_not_depend_on_the_thread_count(backend, parity):
    # Few distinct draws per window: the bar head decodes 2-5 candidates, the small product
    # whose last bits depended on the thread count on a 2-core AMD EPYC (models/threads.py).
    # The decoded bars are compared before un-normalising, which can round a last bit away.
    evaluator = backend.evaluator(fixture_bars(parity))
    config = KronosSettings.from_config(
        {**SAMPLED, "sample_count": 5, "top_p": 0.67, "temperature": 0.9, "clip": 3.45}
    )
    windows = evaluator._windows(list(parity["eval__targets"]), config)
    draws: dict[int, list[np.ndarray]] = {}
    for count in (1, 2):
        with intra_op_threads(count):
            draws[count] = [
                sample_window_draws(
                    backend.predictor, backend.tokenizer, window, config,
                    torch.Generator().manual_seed(7),
                )[0]
                for window in windows
            ]  # fmt: skip
            assert torch.get_num_threads() == count, "stage 2 restores the thread count"
    assert all(len(bars) > 1 for bars in draws[1])
    for one, two in zip(draws[1], draws[2], strict=True):
        np.testing.assert_array_equal(one, two)
