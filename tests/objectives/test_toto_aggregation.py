"""Aggregate specs: parsing, formatting, and each family against a NumPy reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from objectives.toto.aggregation import FAMILIES, aggregate, format_number, format_spec, parse

RNG = np.random.default_rng(0)
SAMPLES = RNG.standard_t(3.0, size=(3, 1000)) * 5.0 + 100.0  # (W, N)


def reference(x: np.ndarray, spec: str) -> np.ndarray:
    """Straightforward NumPy versions of the documented definitions."""
    mean, std = x.mean(-1), x.std(-1)
    n = x.shape[-1]
    ordered = np.sort(x, axis=-1)
    parts = spec.split("_")
    args = [float(p) for p in parts if p[0].isdigit()]
    if spec == "mean":
        return mean
    if spec == "median":
        return np.quantile(x, 0.5, axis=-1)
    if spec.startswith("trimmed_mean"):
        k = int(np.floor(args[0] * n))
        return ordered[:, k : n - k].mean(-1)
    if spec.startswith("lower_trimmed_mean"):
        return ordered[:, int(np.floor(args[0] * n)) :].mean(-1)
    if spec.startswith("upper_trimmed_mean"):
        return ordered[:, : n - int(np.floor(args[0] * n))].mean(-1)
    if spec.startswith("quantile_plus_std"):
        return np.quantile(x, args[0], axis=-1) + args[1] * std
    if spec.startswith("quantile"):
        return np.quantile(x, args[0], axis=-1)
    if spec.startswith("mean_minus_std"):
        return mean - args[0] * std
    if spec.startswith("mean_plus_std"):
        return mean + args[0] * std
    if spec.startswith("mean_quantile_mix"):
        return args[1] * np.quantile(x, args[0], axis=-1) + (1 - args[1]) * mean
    raise AssertionError(spec)


SPECS = [
    "mean",
    "median",
    "trimmed_mean_0.10",
    "trimmed_mean_0.25",
    "lower_trimmed_mean_0.15",
    "upper_trimmed_mean_0.30",
    "quantile_0.35",
    "quantile_0.90",
    "mean_minus_std_0.50",
    "mean_plus_std_1.25",
    "mean_quantile_mix_0.20_0.70",
    "quantile_plus_std_0.60_0.40",
]


def test_every_family_is_exercised() -> None:
    assert {parse(s).family for s in SPECS} == set(FAMILIES)


@pytest.mark.parametrize("spec", SPECS)
def test_each_spec_matches_its_numpy_definition(spec: str) -> None:
    ours = aggregate(torch.from_numpy(SAMPLES), spec).numpy()
    np.testing.assert_allclose(ours, reference(SAMPLES, spec), rtol=1e-12, atol=1e-9)


def test_trimmed_mean_drops_the_fraction_from_each_tail() -> None:
    x = torch.arange(1.0, 11.0)[None]  # 1..10 with one outlier replaced below
    x[0, -1] = 1000.0
    assert aggregate(x, "trimmed_mean_0.10").item() == pytest.approx(np.mean(range(2, 10)))
    assert aggregate(x, "lower_trimmed_mean_0.20").item() == pytest.approx(
        (sum(range(3, 10)) + 1000) / 8
    )
    assert aggregate(x, "upper_trimmed_mean_0.10").item() == pytest.approx(5.0)


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "avg",
        "trimmed_mean",
        "trimmed_mean_",
        "trimmed_mean_0.1_0.2",
        "trimmed_mean_0.50",
        "trimmed_mean_-0.1",
        "quantile_1.5",
        "quantile_abc",
        "mean_quantile_mix_0.5",
        "mean_quantile_mix_0.5_1.5",
        "median_0.5",
        "upper_trimmed_mean_1.0",
    ],
)
def test_malformed_specs_raise_value_error_naming_the_spec(spec: str) -> None:
    with pytest.raises(ValueError, match="aggregate"):
        parse(spec)


def test_a_non_string_spec_is_refused() -> None:
    with pytest.raises(ValueError, match="must be a string"):
        parse(0.1)  # type: ignore[arg-type]


def test_specs_round_trip_through_text() -> None:
    for spec in SPECS:
        parsed = parse(spec)
        assert parsed.spec == spec
        assert parse(parsed.spec) == parsed


def test_numbers_print_as_the_value_they_stand_for() -> None:
    assert format_number(0.01 + 9 * 0.01) == "0.10"
    assert format_number(0.1) == "0.10"
    assert format_number(1.5) == "1.50"
    assert format_number(0.125) == "0.125"
    assert format_spec("mean_quantile_mix", (0.2, 0.7)) == "mean_quantile_mix_0.20_0.70"


def test_trimmed_means_and_quantiles_are_exact_with_ties() -> None:
    x = np.round(RNG.standard_normal((4, 501)), 1)  # many repeated values
    for spec in ("trimmed_mean_0.20", "lower_trimmed_mean_0.33", "upper_trimmed_mean_0.07"):
        ours = aggregate(torch.from_numpy(x), spec).numpy()
        np.testing.assert_allclose(ours, reference(x, spec), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        aggregate(torch.from_numpy(x), "quantile_0.37").numpy(), np.quantile(x, 0.37, axis=-1)
    )
