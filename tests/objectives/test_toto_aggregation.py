"""Aggregate specs mean exactly what the trading code's ``aggregate_with_spec`` reads.

``trading_aggregate`` below is a NumPy transcription of the trading code's parser (written
here, not imported: the trading code is not available to this repo). Every spec is checked
against it: the family and arguments :func:`parse` returns, the values on many sample sets,
the canonical spec read back by the transcription, and the specs it refuses.
"""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
import torch

from objectives.exceptions import DataError
from objectives.toto.aggregation import FAMILIES, aggregate, format_number, format_spec, parse

# --- the transcription ------------------------------------------------------------------------


def _validate_fraction(value: float) -> float:
    if value > 1.0:
        value /= 100.0
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"fraction out of range: {value}")
    return value


def _parse_fraction(token: str) -> float:
    return _validate_fraction(float(token))


def trading_resolve(method: str | None) -> tuple[str, tuple[float, ...]]:
    """The trading parser's dispatch: the operation it applies and its arguments."""
    method = (method or "mean").strip().lower()
    if method in {"mean", "median", "p10", "p90"}:
        return {
            "mean": ("mean", ()),
            "median": ("median", ()),
            "p10": ("quantile", (0.10,)),
            "p90": ("quantile", (0.90,)),
        }[method]
    if method.startswith("trimmed_mean_"):
        fraction = _parse_fraction(method.split("_")[-1])
        fraction = _validate_fraction(fraction)  # trimmed_mean(F) validates again
        if not 0.0 <= fraction < 0.5:
            raise ValueError("trim fraction must be in [0, 0.5)")
        return "trimmed_mean", (fraction,)
    if method.startswith("lower_trimmed_mean_"):
        return "lower_trimmed_mean", (_parse_fraction(method.split("_")[-1]),)
    if method.startswith("upper_trimmed_mean_"):
        return "upper_trimmed_mean", (_parse_fraction(method.split("_")[-1]),)
    if method.startswith("quantile_"):
        return "quantile", (_parse_fraction(method.split("_")[-1]),)
    if method.startswith("mean_minus_std_"):
        return "mean_minus_std", (float(method.split("_")[-1]),)
    if method.startswith("mean_plus_std_"):
        return "mean_plus_std", (float(method.split("_")[-1]),)
    if method.startswith("mean_quantile_mix_"):
        parts = method.split("_")
        if len(parts) < 5:
            raise ValueError("mean_quantile_mix needs a quantile and a weight")
        q = _parse_fraction(parts[-2])
        w = float(np.clip(float(parts[-1]), 0.0, 1.0))
        return "mean_quantile_mix", (q, w)
    if method.startswith("quantile_plus_std_"):  # unreachable: "quantile_" matched first
        raise AssertionError("unreachable")
    raise ValueError(f"Unknown aggregation method: {method}")


def trading_aggregate(samples: np.ndarray, method: str | None) -> float:
    """The trading code's value for one window's samples ``(N,)``."""
    x = np.asarray(samples, dtype=np.float64)
    n = x.shape[0]
    op, args = trading_resolve(method)
    if op == "mean":
        return float(x.mean())
    if op == "median":
        return float(np.median(x))
    if op == "quantile":
        return float(np.quantile(x, args[0]))
    if op == "trimmed_mean":
        s = np.sort(x)
        t = int(n * args[0])
        if t == 0 or 2 * t >= n:
            return float(x.mean())
        return float(s[t : n - t].mean())
    if op == "lower_trimmed_mean":
        s = np.sort(x)
        cutoff = max(1, int(n * (1.0 - args[0])))
        return float(s[:cutoff].mean())
    if op == "upper_trimmed_mean":
        s = np.sort(x)
        start = min(n - 1, int(n * args[0]))
        return float(s[start:].mean())
    if op == "mean_minus_std":
        return float(x.mean() - args[0] * x.std())
    if op == "mean_plus_std":
        return float(x.mean() + args[0] * x.std())
    if op == "mean_quantile_mix":
        q, w = args
        return float(w * x.mean() + (1 - w) * np.quantile(x, q))
    raise AssertionError(op)


def trading_rows(x: np.ndarray, method: str | None) -> np.ndarray:
    return np.array([trading_aggregate(row, method) for row in x])


def bits(resolved: tuple[str, tuple[float, ...]]) -> tuple[str, tuple[bytes, ...]]:
    """Family and arguments with each float as its 8 bytes, for bit-for-bit comparison."""
    op, args = resolved
    return op, tuple(struct.pack("<d", a) for a in args)


def assert_close(ours: torch.Tensor, x: np.ndarray, spec: str | None, label: str = "") -> None:
    """Ours equals the transcription's value on each row of ``x`` to 1e-12, relative to the
    larger of the value and the samples' size (``mean - S * std`` may cancel)."""
    expected = trading_rows(x, spec)
    scale = np.maximum(np.abs(expected), np.abs(x).max(axis=-1))
    error = np.abs(ours.numpy() - expected)
    assert np.all(error <= 1e-12 * scale), (label, spec, ours.numpy(), expected)


# --- sample sets ------------------------------------------------------------------------------

SIZES = (64, 100, 128, 1000, 3072, 4096)


def _sample_sets() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    sets = {}
    for n in SIZES:
        sets[f"t2-{n}"] = rng.standard_t(2.0, size=(3, n)) * 5.0 + 100.0  # heavy tails
        sets[f"cauchy-{n}"] = rng.standard_cauchy(size=(2, n)) + 50.0
        sets[f"ties-{n}"] = np.round(rng.standard_normal((2, n)), 1) + 10.0
        # distinct values, so every change in how many sorted samples are kept shows
        sets[f"ranks-{n}"] = np.stack([rng.permutation(n) ** 1.5 for _ in range(2)]) + 1.0
    return sets


SAMPLE_SETS = _sample_sets()

SPECS = [
    "",
    "mean",
    "median",
    "p10",
    "p90",
    "trimmed_mean_0.10",
    "trimmed_mean_10",
    "trimmed_mean_0.25",
    "trimmed_mean_0.29",  # int(100 * 0.29) == 28
    "trimmed_mean_0.015",  # int(64 * 0.015) == 0: the plain mean
    "trimmed_mean_1.5",  # 1.5% == 0.015
    "trimmed_mean_0.45",
    "trimmed_mean_0",
    "lower_trimmed_mean_0.15",
    "lower_trimmed_mean_15",
    "lower_trimmed_mean_0.34",  # int(100 * (1 - 0.34)) == 65
    "lower_trimmed_mean_0.90",  # int(1000 * (1 - 0.9)) == 99
    "lower_trimmed_mean_1",  # keeps max(1, 0) == 1 sample: the minimum
    "lower_trimmed_mean_0",
    "upper_trimmed_mean_0.30",
    "upper_trimmed_mean_20",
    "upper_trimmed_mean_0.29",  # int(100 * 0.29) == 28
    "upper_trimmed_mean_0.57",
    "upper_trimmed_mean_1.0",  # starts at min(N - 1, N): the maximum
    "quantile_0.35",
    "quantile_15",
    "quantile_0.90",
    "quantile_0",
    "quantile_1",
    "quantile_100",
    "quantile_plus_std_0.15_0.12",  # read as quantile_0.12
    "quantile_plus_std_0.60_40",  # read as quantile_0.40
    "mean_minus_std_0.50",
    "mean_minus_std_1e-1",
    "mean_minus_std_-0.25",
    "mean_plus_std_1.25",
    "mean_plus_std_3",  # not a fraction: 3 standard deviations
    "mean_quantile_mix_0.20_0.70",
    "mean_quantile_mix_15_0.3",
    "mean_quantile_mix_0.2_1.7",  # W clipped to 1: the mean
    "mean_quantile_mix_0.2_-0.5",  # W clipped to 0: the quantile
    "mean_quantile_mix_0.2_inf",
    "  Trimmed_Mean_0.10 ",
    "MEDIAN",
    " P90\t",
    "Mean_Quantile_Mix_0.2_0.7",
    "trimmed_mean_0.1_0.2",  # the last token counts: trimmed_mean 0.2
    "quantile_abc_0.5",
    "mean_quantile_mix_x_0.2_0.3",
    "quantile_ 0.3",  # float() ignores the space
]

REFUSED = [
    "   ",
    "avg",
    "mean_0.5",
    "median_0.5",
    "p50",
    "trimmed_mean",
    "trimmed_mean_",
    "trimmed_mean_abc",
    "trimmed_mean_0.5",
    "trimmed_mean_50",
    "trimmed_mean_1",
    "trimmed_mean_-0.1",
    "trimmed_mean_nan",
    "lower_trimmed_mean_101",
    "lower_trimmed_mean_-5",
    "upper_trimmed_mean_150",
    "upper_trimmed_mean_x",
    "quantile",
    "quantile_",
    "quantile_250",
    "quantile_abc",
    "quantile_-0.1",
    "quantile_inf",
    "quantile_plus_std_0.15_abc",
    "mean_minus_std_",
    "mean_minus_std_x",
    "mean_plus_std",
    "mean_quantile_mix_0.3",
    "mean_quantile_mix_0.5",
    "mean_quantile_mix__0.3",
    "mean_quantile_mix_abc_0.5",
    "mean_quantile_mix_250_0.5",
    "mean_quantile_mix_0.5_abc",
]

#: specs the trading code takes but that give nan or infinite forecasts: refused here
NON_FINITE = [
    "mean_minus_std_nan",
    "mean_plus_std_inf",
    "mean_minus_std_-inf",
    "mean_quantile_mix_0.2_nan",
]


# --- tests ------------------------------------------------------------------------------------


def test_every_family_is_exercised() -> None:
    assert {parse(s).family for s in SPECS} == set(FAMILIES)


@pytest.mark.parametrize("spec", SPECS)
def test_parse_gives_the_trading_codes_function_and_values(spec: str) -> None:
    parsed = parse(spec)
    assert bits((parsed.family, parsed.args)) == bits(trading_resolve(spec))


@pytest.mark.parametrize("spec", SPECS)
def test_each_spec_matches_the_trading_code_on_every_sample_set(spec: str) -> None:
    for name, x in SAMPLE_SETS.items():
        ours = aggregate(torch.from_numpy(x), spec)
        assert ours.dtype == torch.float64 and ours.shape == (x.shape[0],)
        assert_close(ours, x, spec, name)


@pytest.mark.parametrize("spec", SPECS)
def test_the_canonical_spec_is_read_back_identically(spec: str) -> None:
    parsed = parse(spec)
    canonical = parsed.spec
    assert parse(canonical) == parsed
    assert bits(trading_resolve(canonical)) == bits(trading_resolve(spec))
    x = SAMPLE_SETS["t2-1000"]
    assert np.array_equal(trading_rows(x, canonical), trading_rows(x, spec))
    assert canonical == canonical.strip().lower()
    if parsed.family not in ("mean_minus_std", "mean_plus_std"):  # fractions, never percent
        assert all(0.0 <= a <= 1.0 for a in parsed.args)


@pytest.mark.parametrize(
    ("spec", "canonical"),
    [
        ("", "mean"),
        ("p10", "quantile_0.10"),
        ("P90", "quantile_0.90"),
        ("median", "median"),
        ("trimmed_mean_10", "trimmed_mean_0.10"),
        ("trimmed_mean_1.5", "trimmed_mean_0.015"),
        ("lower_trimmed_mean_15", "lower_trimmed_mean_0.15"),
        ("lower_trimmed_mean_1", "lower_trimmed_mean_1.00"),
        ("upper_trimmed_mean_20", "upper_trimmed_mean_0.20"),
        ("quantile_15", "quantile_0.15"),
        ("quantile_plus_std_0.15_0.12", "quantile_0.12"),
        ("mean_minus_std_1e-1", "mean_minus_std_0.10"),
        ("mean_plus_std_3", "mean_plus_std_3.00"),
        ("mean_quantile_mix_15_0.3", "mean_quantile_mix_0.15_0.30"),
        ("mean_quantile_mix_0.2_1.7", "mean_quantile_mix_0.20_1.00"),
        ("  Trimmed_Mean_0.10 ", "trimmed_mean_0.10"),
    ],
)
def test_canonical_text(spec: str, canonical: str) -> None:
    assert parse(spec).spec == canonical


def test_p10_p90_and_median_are_their_quantiles() -> None:
    assert parse("p10") == parse("quantile_0.10") == parse("quantile_10")
    assert parse("p90") == parse("quantile_90")
    assert parse("median").family == "median"


@pytest.mark.parametrize("spec", REFUSED)
def test_specs_the_trading_code_refuses_are_data_errors(spec: str) -> None:
    with pytest.raises(ValueError):
        trading_resolve(spec)  # the transcription refuses it too
    with pytest.raises(DataError, match="aggregate") as caught:
        parse(spec)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("spec", NON_FINITE)
def test_non_finite_numbers_are_refused_though_the_trading_code_takes_them(spec: str) -> None:
    trading_resolve(spec)
    with pytest.raises(DataError, match="finite"):
        parse(spec)


def test_a_non_string_spec_is_refused_and_none_is_the_mean() -> None:
    with pytest.raises(DataError, match="must be a string"):
        parse(0.1)  # type: ignore[arg-type]
    assert parse(None) == parse("mean") == parse("")


def test_random_specs_agree_with_the_transcription() -> None:
    """Fuzz: random prefixes and tokens; both refuse, or both give the same function."""
    rng = np.random.default_rng(1)
    prefixes = [
        "trimmed_mean_",
        "lower_trimmed_mean_",
        "upper_trimmed_mean_",
        "quantile_",
        "quantile_plus_std_",
        "mean_minus_std_",
        "mean_plus_std_",
        "mean_quantile_mix_",
        "mean_",
        "",
    ]
    tokens = "0 1 0.5 0.49 0.999 1.0001 5 49.9 50 99 100 100.5 -0 -0.1 1e-3 2E1 abc inf".split()
    tokens += ["", str(1 / 3)]
    x = SAMPLE_SETS["ranks-100"]
    for _ in range(2000):
        parts = rng.choice(tokens, size=rng.integers(0, 4))
        spec = str(rng.choice(prefixes)) + "_".join(str(p) for p in parts)
        try:
            expected = trading_resolve(spec)
        except ValueError:
            with pytest.raises(DataError):
                parse(spec)
            continue
        if not all(math.isfinite(a) for a in expected[1]):
            with pytest.raises(DataError, match="finite"):
                parse(spec)
            continue
        parsed = parse(spec)
        assert bits((parsed.family, parsed.args)) == bits(expected), spec
        assert bits(trading_resolve(parsed.spec)) == bits(expected), spec
        assert_close(parsed(torch.from_numpy(x)), x, spec)


def test_lower_drops_the_top_and_upper_drops_the_bottom() -> None:
    x = torch.arange(1.0, 11.0, dtype=torch.float64)[None]  # 1..10
    x[0, -1] = 1000.0
    assert aggregate(x, "trimmed_mean_0.10").item() == np.mean(range(2, 10))
    # lowest int(10 * 0.8) == 8 samples: the outlier is dropped
    assert aggregate(x, "lower_trimmed_mean_0.20").item() == np.mean(range(1, 9))
    # sorted[2:]: the two smallest are dropped, the outlier kept
    assert aggregate(x, "upper_trimmed_mean_0.20").item() == (sum(range(3, 10)) + 1000) / 8
    assert aggregate(x, "lower_trimmed_mean_1").item() == 1.0
    assert aggregate(x, "upper_trimmed_mean_1").item() == 1000.0


def test_the_mix_weight_is_the_means() -> None:
    x = torch.tensor([[0.0, 1.0, 2.0, 3.0, 100.0]], dtype=torch.float64)
    mean, q20 = 106.0 / 5, 0.8  # numpy.quantile(x, 0.2) == 0.8
    assert aggregate(x, "mean_quantile_mix_0.2_0.7").item() == pytest.approx(
        0.7 * mean + 0.3 * q20, rel=1e-15
    )
    assert aggregate(x, "mean_quantile_mix_0.2_1.7").item() == pytest.approx(mean, rel=1e-15)


def test_float32_samples_are_reduced_in_float64() -> None:
    x = SAMPLE_SETS["t2-128"]
    ours = aggregate(torch.from_numpy(x).float(), "trimmed_mean_0.10")
    assert ours.dtype == torch.float64
    expected = trading_rows(x.astype(np.float32), "trimmed_mean_0.10")
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-12)


def test_no_samples_is_refused() -> None:
    with pytest.raises(DataError, match="at least one sample"):
        aggregate(torch.zeros((2, 0)), "mean")


def test_numbers_print_as_exactly_the_value() -> None:
    assert format_number(0.1) == "0.10"
    assert format_number(1.5) == "1.50"
    assert format_number(0.015) == "0.015"
    assert format_number(0.125) == "0.125"
    assert format_number(0.01 + 9 * 0.01) == repr(0.01 + 9 * 0.01)  # not the grid value 0.10
    assert float(format_number(1 / 3)) == 1 / 3
    assert format_number(1e300) == "1e+300"
    assert format_spec("mean_quantile_mix", (0.2, 0.7)) == "mean_quantile_mix_0.20_0.70"
