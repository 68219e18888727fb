"""Later steps of a Kronos path run against cached context windows, and give the paths that
re-running the whole (slid) window per path and step, as upstream does, gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.kronos.layers import KV
from objectives.bars import Bars
from objectives.evaluator import load_backend
from objectives.kronos.paths import full_window_paths, sample_paths, step_contexts, step_starts
from objectives.tasks import TRADING

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
KRONOS_CHECKPOINT = FIXTURES / "kronos" / "checkpoint"


@pytest.fixture(scope="module")
def backend():
    return load_backend("kronos", checkpoint=str(KRONOS_CHECKPOINT))


def bars(n: int = 300) -> Bars:
    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, n)))
    open_ = close * np.exp(rng.normal(0, 0.005, n))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, n))
    stamps = np.arange("2024-01-01", n, dtype="datetime64[D]").astype("datetime64[ns]")
    return Bars("TEST", stamps, np.stack([open_, high, low, close], 1), rng.uniform(1, 9, n), None)


def test_a_cached_window_gives_the_full_windows_hidden_states(backend) -> None:
    predictor = backend.predictor
    g = torch.Generator().manual_seed(0)
    V1, V2 = 2**predictor.config.s1_bits, 2**predictor.config.s2_bits
    L, j, B = 40, 3, 5
    s1 = torch.randint(0, V1, (1, L), generator=g)
    s2 = torch.randint(0, V2, (1, L), generator=g)
    stamp = torch.randint(1, 7, (1, L + j, 5), generator=g).float()
    p1 = torch.randint(0, V1, (B, j), generator=g)
    p2 = torch.randint(0, V2, (B, j), generator=g)
    start = 4
    context = step_contexts(predictor, s1, s2, stamp[:, :L], L - start + j, j + 1)[start]
    past = [KV(c.k.expand(B, -1, -1, -1), c.v.expand(B, -1, -1, -1)) for c in context.blocks]
    cached, _ = predictor.hidden_cached(p1, p2, stamp[:, L:].expand(B, -1, -1), past)
    full = predictor.hidden(
        torch.cat([s1.expand(B, L), p1], 1)[:, start:],
        torch.cat([s2.expand(B, L), p2], 1)[:, start:],
        stamp[:, start:].expand(B, -1, -1),
    )
    torch.testing.assert_close(cached, full[:, -j:], rtol=1e-5, atol=1e-5)
    dep = predictor.dependency_kv(full)
    torch.testing.assert_close(context.dep_kv.k.expand(B, -1, -1, -1), dep.k[:, :, : L - start])


def test_the_windows_of_a_path_slide_from_step_two_when_lookback_is_max_context() -> None:
    assert step_starts(232, 232, 7) == {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6}
    assert step_starts(100, 232, 7) == dict.fromkeys(range(1, 7), 0)  # an early, short context


@pytest.mark.parametrize("max_context", [48, 512])  # sliding windows; one that never slides
def test_sampled_paths_equal_re_running_the_whole_window(backend, max_context) -> None:
    evaluator = backend.evaluator(bars(), TRADING, 7)
    config = {"temperature": 1.0, "top_p": 0.95, "top_k": 0, "sample_count": 24,
              "max_context": max_context, "clip": 3.0}  # fmt: skip
    settings = evaluator.settings(config)
    origin = 260
    window = evaluator._windows([origin], settings)[0]
    future = evaluator.future_stamp(origin, max_context)
    model = (backend.predictor, backend.tokenizer, window, settings)
    ours = sample_paths(*model, torch.Generator().manual_seed(9), future, max_context)
    reference = full_window_paths(*model, torch.Generator().manual_seed(9), future, max_context)
    assert len(reference[1]) > 4  # the draws made distinct paths
    np.testing.assert_array_equal(ours[1], reference[1])
    np.testing.assert_allclose(ours[0], reference[0], rtol=1e-6, atol=1e-6)
    assert ours[2] == reference[2]  # as many path rows, each a few positions, not a window


def test_a_warm_path_runs_no_window_pass_and_counts_its_path_rows(backend) -> None:
    evaluator = backend.evaluator(bars(), TRADING, 7)
    config = {"temperature": 1.0, "top_p": 0.9, "top_k": 0, "sample_count": 8,
              "max_context": 64, "clip": 2.5}  # fmt: skip
    origins = np.array([250, 251])
    cold = evaluator.forecast(origins, config, seed=1)
    assert cold.passes == 2 * 7  # per window: stage 1 and 6 slid context parts
    warm = evaluator.forecast(origins, {**config, "temperature": 0.7}, seed=1)
    assert warm.passes == 0
    assert warm.path_rows >= 2 * 6  # at least one path per window and later step
