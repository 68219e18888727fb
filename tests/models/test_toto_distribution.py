"""The mixture head's seeded sampler: exact distribution, row independence, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from models.threads import intra_op_threads
from models.toto.distribution import (
    Mixture,
    MixtureOfStudentTsHead,
    _redraw_gamma,
    sample_mixtures,
)

MIXTURE = Mixture(
    weights=torch.tensor([[0.3, 0.7], [1.0, 0.0]]),
    df=torch.tensor([[2.0, 7.0], [3.5, 3.5]]),  # df = 2 is the hardest case for the gamma draw
    loc=torch.tensor([[0.0, 1.0], [-2.0, 0.0]]),
    scale=torch.tensor([[1.0, 0.5], [2.0, 2.0]]),
)


def mixture_cdf(row: int):
    w, df, loc, scale = (t[row].numpy().astype(float) for t in MIXTURE)
    return lambda x: sum(
        w[k] * stats.t(df[k], loc=loc[k], scale=scale[k]).cdf(x) for k in range(len(w))
    )


def generators(*seeds: int) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(s) for s in seeds]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_draws_follow_the_exact_mixture_cdf(dtype: torch.dtype) -> None:
    draws = sample_mixtures(MIXTURE, 100_000, generators(1, 2), dtype=dtype)
    assert draws.shape == (2, 100_000) and draws.dtype == dtype
    for row in range(2):
        assert stats.kstest(draws[row].numpy(), mixture_cdf(row)).pvalue > 0.01
    wrong = stats.t(2.0).cdf  # the first component alone is rejected
    assert stats.kstest(draws[0].numpy(), wrong).pvalue < 1e-6


def test_a_rows_draws_depend_only_on_its_own_generator() -> None:
    both = sample_mixtures(MIXTURE, 4096, generators(5, 6))
    alone = sample_mixtures(Mixture(*(t[1:] for t in MIXTURE)), 4096, generators(6))
    assert torch.equal(both[1], alone[0])
    assert torch.equal(both, sample_mixtures(MIXTURE, 4096, generators(5, 6)))
    assert not torch.equal(both, sample_mixtures(MIXTURE, 4096, generators(5, 7)))


def test_the_rejection_fallback_draws_the_right_gamma() -> None:
    alpha = 1.0  # df = 2
    d = torch.full((50_000,), alpha - 1.0 / 3.0, dtype=torch.float64)
    draws = _redraw_gamma(d, torch.Generator().manual_seed(0))
    assert stats.kstest(draws.numpy(), stats.gamma(alpha).cdf).pvalue > 0.01
    assert np.isfinite(draws.numpy()).all()


def test_the_mixture_head_does_not_depend_on_the_thread_count() -> None:
    # 12 components over 4 patch rows: a narrow product MKL gave thread-dependent last bits
    # on a 2-core AMD EPYC (models/threads.py)
    torch.manual_seed(0)
    head = MixtureOfStudentTsHead(embed_dim=32, k_components=12)
    hidden = torch.randn(1, 1, 4, 32)
    outputs = []
    for count in (1, 2):
        with intra_op_threads(count), torch.no_grad():
            outputs.append(head(hidden))
            assert torch.get_num_threads() == count
    for one, two in zip(*outputs, strict=True):
        assert torch.equal(one, two)
