"""What the trading code runs is what the search scored.

The trading code (lee101/stock-prediction at commit 3d98a753, ``backtest_test3_inline.py``)
does not run a record's ``config`` as written: it fills defaults, clamps and rounds. This file
*transcribes* (never imports) the rules of its ``resolve_toto_params``, ``_clamp_toto_params``,
``_normalise_sampling_params`` and ``resolve_kronos_params`` with its default environment, and
checks that every value the project's search spaces can propose comes out of them unchanged.
The environment overrides (``MARKETSIM_TOTO_*``, ``TOTO_*``, ``FAST_TESTING``,
``MARKETSIM_KRONOS_SAMPLE_COUNT``) are the trading operator's business; the defaults are what
a record is run with when none is set.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import optuna
import pytest

from objectives.exceptions import DataError
from objectives.kronos.space import (
    CLIP,
    CLIP_STEP,
    MAX_CONTEXT,
    MAX_CONTEXT_STEP,
    SAMPLE_COUNT,
    TEMPERATURE,
    TOP_K,
    TOP_P,
    KronosSettings,
    KronosSpace,
)
from objectives.toto.aggregation import FAMILIES, parse
from objectives.toto.space import GRIDS, NUM_SAMPLES, SEARCHED, TotoSettings, TotoSpace, param_name

optuna.logging.set_verbosity(optuna.logging.WARNING)

# --- the transcription: Toto ------------------------------------------------------------------
# Module constants with no environment set (``_read_int_env`` defaults, then its fix-ups, which
# change nothing at these values).
DEFAULT_TOTO_NUM_SAMPLES = 3072  # TOTO_NUM_SAMPLES
DEFAULT_TOTO_SAMPLES_PER_BATCH = 384  # TOTO_SAMPLES_PER_BATCH
DEFAULT_TOTO_AGG_SPEC = "trimmed_mean_10"  # TOTO_AGGREGATION_SPEC
TOTO_MIN_SAMPLES_PER_BATCH = 32  # MARKETSIM_TOTO_MIN_SAMPLES_PER_BATCH
TOTO_MIN_NUM_SAMPLES = 128  # MARKETSIM_TOTO_MIN_NUM_SAMPLES
TOTO_MAX_SAMPLES_PER_BATCH = 512  # MARKETSIM_TOTO_MAX_SAMPLES_PER_BATCH
TOTO_MAX_NUM_SAMPLES = 4096  # MARKETSIM_TOTO_MAX_NUM_SAMPLES


def clamp_toto_params(params: dict) -> dict:
    """``_clamp_toto_params``: num_samples into [min, max]; samples_per_batch into
    [min batch, min(max batch, num_samples)]."""
    num_samples = int(params.get("num_samples", DEFAULT_TOTO_NUM_SAMPLES))
    samples_per_batch = int(params.get("samples_per_batch", DEFAULT_TOTO_SAMPLES_PER_BATCH))
    num_samples = max(TOTO_MIN_NUM_SAMPLES, min(TOTO_MAX_NUM_SAMPLES, num_samples))
    samples_per_batch = max(
        TOTO_MIN_SAMPLES_PER_BATCH,
        min(TOTO_MAX_SAMPLES_PER_BATCH, samples_per_batch, num_samples),
    )
    return {**params, "num_samples": num_samples, "samples_per_batch": samples_per_batch}


def normalise_sampling_params(num_samples: int, samples_per_batch: int) -> tuple[int, int]:
    """``_normalise_sampling_params`` (run before every Toto call of ``_compute_toto_forecast``):
    clamp again, then round num_samples down to a multiple of samples_per_batch."""
    num_samples = max(TOTO_MIN_NUM_SAMPLES, min(TOTO_MAX_NUM_SAMPLES, num_samples))
    samples_per_batch = max(TOTO_MIN_SAMPLES_PER_BATCH, min(samples_per_batch, num_samples))
    if samples_per_batch <= 0:
        samples_per_batch = TOTO_MIN_SAMPLES_PER_BATCH
    if num_samples < samples_per_batch:
        num_samples = samples_per_batch
    remainder = num_samples % samples_per_batch
    if remainder != 0:
        num_samples -= remainder
        if num_samples < samples_per_batch:
            num_samples = samples_per_batch
    return num_samples, samples_per_batch


def resolve_toto_params(config: dict) -> dict:
    """``resolve_toto_params`` for a loaded record's ``config`` (no ``FAST_TESTING``): three
    keys with defaults, every other key (``name``, ``max_context``) dropped, then clamped."""
    params = {
        "num_samples": int(config.get("num_samples", DEFAULT_TOTO_NUM_SAMPLES)),
        "samples_per_batch": int(config.get("samples_per_batch", DEFAULT_TOTO_SAMPLES_PER_BATCH)),
        "aggregate": config.get("aggregate", DEFAULT_TOTO_AGG_SPEC),
    }
    return clamp_toto_params(params)


def toto_runs(config: dict) -> dict:
    """What the trading code's Toto call gets for ``config`` (before any OOM fallback)."""
    params = resolve_toto_params(config)
    num_samples, samples_per_batch = normalise_sampling_params(
        int(params["num_samples"]), int(params["samples_per_batch"])
    )
    return {**params, "num_samples": num_samples, "samples_per_batch": samples_per_batch}


# --- the transcription: Kronos ----------------------------------------------------------------
DEFAULT_KRONOS_PARAMS = {
    "temperature": 0.152,
    "top_p": 0.83,
    "top_k": 20,
    "sample_count": 192,
    "max_context": 232,
    "clip": 1.85,
}


def resolve_kronos_params(config: dict, env: dict[str, str] | None = None) -> dict:
    """``resolve_kronos_params``: the six defaults, each replaced by the record's key (other
    keys ignored); ``MARKETSIM_KRONOS_SAMPLE_COUNT`` (a positive integer) overrides
    ``sample_count``. No clamping."""
    params = DEFAULT_KRONOS_PARAMS.copy()
    params.update({k: config.get(k, params[k]) for k in params})
    env_sample_count = (env or {}).get("MARKETSIM_KRONOS_SAMPLE_COUNT")
    if env_sample_count:
        try:
            override = max(1, int(env_sample_count))
        except ValueError:
            pass
        else:
            params["sample_count"] = override
    return params


def kronos_runs(config: dict) -> dict:
    """The casts at the call sites (``load_kronos_wrapper``, ``predict_series`` in the backtest)
    and the wrapper's ``max(1, ...)`` of ``sample_count`` and the lookback."""
    params = resolve_kronos_params(config)
    return {
        "temperature": float(params["temperature"]),
        "top_p": float(params["top_p"]),
        "top_k": int(params["top_k"]),
        "sample_count": max(1, int(params["sample_count"])),
        "max_context": max(1, int(params["max_context"])),
        "clip": float(params["clip"]),
    }


# --- the transcription reproduces the documented facts ----------------------------------------


@pytest.mark.parametrize(
    ("num_samples", "runs"),
    [(64, 128), (128, 128), (256, 256), (512, 384), (1024, 768), (2048, 1920), (3072, 3072),
     (4096, 3840), (8192, 3840)],
)  # fmt: skip
def test_without_samples_per_batch_the_trading_code_runs_another_num_samples(
    num_samples: int, runs: int
) -> None:
    """../shared/CONSUMER.md: a record without samples_per_batch runs 512 as 384, 1024 as 768,
    2048 as 1920, 4096 as 3840, 64 as 128 (this was the project's config before)."""
    assert toto_runs({"num_samples": num_samples, "aggregate": "mean"})["num_samples"] == runs


def test_an_empty_config_runs_the_trading_codes_defaults() -> None:
    assert toto_runs({}) == {
        "num_samples": 3072, "samples_per_batch": 384, "aggregate": "trimmed_mean_10"
    }  # fmt: skip
    assert resolve_kronos_params({}) == DEFAULT_KRONOS_PARAMS
    assert resolve_kronos_params({}, {"MARKETSIM_KRONOS_SAMPLE_COUNT": "64"})["sample_count"] == 64
    assert resolve_kronos_params({}, {"MARKETSIM_KRONOS_SAMPLE_COUNT": "x"})["sample_count"] == 192


# --- Toto: every proposable value runs unchanged ----------------------------------------------


def _grid(name: str) -> list[float]:
    low, high, step = GRIDS[name]
    return [float(f"{v:.2f}") for v in np.arange(low, high + step / 2, step)]


def _every_aggregate_params() -> list[dict]:
    out = []
    for family in SEARCHED:
        names = [param_name(family, a) for a in FAMILIES[family]]
        for values in itertools.product(*(_grid(n) for n in names)):
            out.append({"aggregate_family": family, **dict(zip(names, values, strict=True))})
    return out


def assert_toto_runs_unchanged(config: dict) -> None:
    assert set(config) == {"num_samples", "samples_per_batch", "aggregate"}, config
    assert toto_runs(config) == config, config


@pytest.mark.parametrize("num_samples", NUM_SAMPLES)
def test_every_searched_num_samples_runs_unchanged(num_samples: int) -> None:
    config = TotoSpace().from_params(
        {"num_samples": num_samples, "aggregate_family": "mean"}
    ).to_config()  # fmt: skip
    assert_toto_runs_unchanged(config)
    assert config["num_samples"] == num_samples


def test_the_searched_values_and_their_batches() -> None:
    """The search space after the change, and what each runs as (all unchanged)."""
    batches = {
        n: TotoSpace()
        .from_params({"num_samples": n, "aggregate_family": "median"})
        .to_config()["samples_per_batch"]
        for n in NUM_SAMPLES
    }
    assert batches == {128: 128, 256: 256, 512: 512, 1024: 512, 2048: 512, 3072: 512, 4096: 512}


def test_every_point_of_the_space_runs_unchanged() -> None:
    """Every num_samples with every aggregate grid point: the spec passes through as written
    (and with num_samples unchanged, every trimmed-mean cut-off ``int(N * F)`` is the scored
    one)."""
    space = TotoSpace()
    count = 0
    for num_samples in NUM_SAMPLES:
        for params in _every_aggregate_params():
            config = space.from_params({"num_samples": num_samples, **params}).to_config()
            assert_toto_runs_unchanged(config)
            assert parse(config["aggregate"]).spec == config["aggregate"]
            count += 1
    assert count == len(NUM_SAMPLES) * (2 + 45 + 90 + 90 + 91 + 30 + 30 + 91 * 19)


def test_suggested_and_known_good_configs_run_unchanged() -> None:
    space = TotoSpace()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=7))
    for params in space.known_good():
        study.enqueue_trial(params)
    seen = set()
    for _ in range(200):
        trial = study.ask()
        config = space.suggest(trial).to_config()
        study.tell(trial, 0.0)
        assert_toto_runs_unchanged(config)
        seen.add(config["num_samples"])
    assert seen == set(NUM_SAMPLES)
    known = space.from_params(study.trials[0].params).to_config()
    assert known == {
        "num_samples": 3072,
        "samples_per_batch": 512,
        "aggregate": "trimmed_mean_0.10",
    }


def test_values_the_trading_code_cannot_run_are_not_searched() -> None:
    """64 runs as 128 (and anything off the multiple-of-the-batch grid is rounded down), so the
    space does not propose it; a config asking for it cannot be enqueued."""
    assert 64 not in NUM_SAMPLES
    assert all(TOTO_MIN_NUM_SAMPLES <= n <= TOTO_MAX_NUM_SAMPLES for n in NUM_SAMPLES)
    with pytest.raises(DataError, match="128"):
        TotoSettings.from_config({"num_samples": 64, "aggregate": "mean"}).to_params()


@pytest.mark.parametrize(
    ("num_samples", "samples_per_batch"),
    [(3072, 384), (3072, 512), (2048, 256), (128, 32), (4096, 512), (1024, 128)],
)
def test_a_config_with_a_batch_the_trading_code_keeps_is_read(
    num_samples: int, samples_per_batch: int
) -> None:
    config = {"num_samples": num_samples, "samples_per_batch": samples_per_batch,
              "aggregate": "trimmed_mean_10"}  # fmt: skip
    assert toto_runs(config) == config
    settings = TotoSettings.from_config(config)
    assert settings.num_samples == num_samples
    assert toto_runs(settings.to_config()) == settings.to_config()


@pytest.mark.parametrize(
    ("num_samples", "samples_per_batch"),
    [(4096, 384), (1000, 384), (64, 64), (2048, 1024), (256, 16), (5000, 500), (512, 0)],
)
def test_a_config_the_trading_code_would_run_otherwise_is_refused(
    num_samples: int, samples_per_batch: int
) -> None:
    config = {"num_samples": num_samples, "samples_per_batch": samples_per_batch,
              "aggregate": "mean"}  # fmt: skip
    assert toto_runs(config) != config
    with pytest.raises(DataError, match="samples_per_batch") as caught:
        TotoSettings.from_config(config)
    assert "\n" not in str(caught.value)


def test_configs_round_trip_with_their_batch() -> None:
    for num_samples in NUM_SAMPLES:
        settings = TotoSettings(num_samples, parse("trimmed_mean_0.10"))
        config = settings.to_config()
        assert TotoSettings.from_config(config) == settings
        assert TotoSettings.from_config(config).to_params()["num_samples"] == num_samples


# --- Kronos: every proposable value runs unchanged --------------------------------------------


def assert_kronos_runs_unchanged(config: dict) -> None:
    assert set(config) == set(DEFAULT_KRONOS_PARAMS), config  # no key left to a default
    assert kronos_runs(config) == config, config
    assert resolve_kronos_params(config) == config


def _corners() -> list[dict]:
    out = []
    for filter_, value in (("top_k", TOP_K[0]), ("top_k", TOP_K[1]), ("top_p", TOP_P[0]),
                           ("top_p", TOP_P[1])):  # fmt: skip
        for temperature, sample_count, max_context, clip in itertools.product(
            TEMPERATURE, SAMPLE_COUNT, MAX_CONTEXT, CLIP
        ):
            out.append(
                {
                    "filter": filter_,
                    filter_: value,
                    "temperature": temperature,
                    "sample_count": sample_count,
                    "max_context": max_context,
                    "clip": clip,
                }
            )
    return out


def test_the_corners_of_the_kronos_space_run_unchanged() -> None:
    space = KronosSpace()
    for params in _corners():
        assert_kronos_runs_unchanged(space.from_params(params).to_config())


def test_every_kronos_grid_value_runs_unchanged() -> None:
    space = KronosSpace()
    base = {"filter": "top_k", "top_k": 20, "temperature": 0.152, "sample_count": 192,
            "max_context": 232, "clip": 1.85}  # fmt: skip
    for max_context in range(MAX_CONTEXT[0], MAX_CONTEXT[1] + 1, MAX_CONTEXT_STEP):
        assert_kronos_runs_unchanged(
            space.from_params({**base, "max_context": max_context}).to_config()
        )
    steps = round((CLIP[1] - CLIP[0]) / CLIP_STEP)
    for k in range(steps + 1):
        clip = CLIP[0] + k * CLIP_STEP  # what Optuna's step grid gives
        config = space.from_params({**base, "clip": clip}).to_config()
        assert_kronos_runs_unchanged(config)
        assert math.isclose(config["clip"], clip, abs_tol=1e-9)
    for top_k in range(TOP_K[0], TOP_K[1] + 1):
        assert_kronos_runs_unchanged(space.from_params({**base, "top_k": top_k}).to_config())
    for sample_count in range(SAMPLE_COUNT[0], SAMPLE_COUNT[1] + 1):
        config = space.from_params({**base, "sample_count": sample_count}).to_config()
        assert_kronos_runs_unchanged(config)


def test_suggested_and_known_good_kronos_configs_run_unchanged() -> None:
    space = KronosSpace()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    for params in space.known_good():
        study.enqueue_trial(params)
    for _ in range(300):
        trial = study.ask()
        config = space.suggest(trial).to_config()
        study.tell(trial, 0.0)
        assert_kronos_runs_unchanged(config)
        assert KronosSettings.from_config(config) == space.from_params(study.trials[-1].params)
    known = space.from_params(study.trials[0].params).to_config()
    assert known == {**DEFAULT_KRONOS_PARAMS, "top_p": 1.0}  # upstream ignores top_p at top_k 20
