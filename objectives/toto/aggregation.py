"""Reduce forecast samples to one number: the trading code's ``aggregate`` spec strings.

Families and their arguments (numbers as decimal text, e.g. ``trimmed_mean_0.10``):

==========================  =============================================================
``mean``                    the sample mean
``median``                  ``quantile_0.5``
``trimmed_mean_F``          mean after dropping ``floor(F * N)`` samples from *each* tail
``lower_trimmed_mean_F``    mean after dropping the lowest ``floor(F * N)`` samples
``upper_trimmed_mean_F``    mean after dropping the highest ``floor(F * N)`` samples
``quantile_Q``              the ``Q`` quantile (linear interpolation, as ``numpy.quantile``)
``mean_minus_std_S``        ``mean - S * std``
``mean_plus_std_S``         ``mean + S * std``
``mean_quantile_mix_Q_W``   ``W * quantile_Q + (1 - W) * mean``
``quantile_plus_std_Q_S``   ``quantile_Q + S * std``
==========================  =============================================================

``std`` is the population standard deviation (``ddof=0``). Every reduction works on a
``(W, N)`` tensor of ``W`` windows' samples at once and returns ``(W,)``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch

from objectives.exceptions import DataError

#: family -> names of its numeric arguments, in spec order
FAMILIES: dict[str, tuple[str, ...]] = {
    "mean": (),
    "median": (),
    "trimmed_mean": ("fraction",),
    "lower_trimmed_mean": ("fraction",),
    "upper_trimmed_mean": ("fraction",),
    "quantile": ("q",),
    "mean_minus_std": ("s",),
    "mean_plus_std": ("s",),
    "mean_quantile_mix": ("q", "w"),
    "quantile_plus_std": ("q", "s"),
}
_NUMBER = r"([0-9]+(?:\.[0-9]+)?)"
_PATTERNS = [
    (family, re.compile("^" + "_".join([family, *([_NUMBER] * len(args))]) + "$"))
    for family, args in FAMILIES.items()
]


@dataclass(frozen=True)
class Aggregate:
    """A parsed spec: its family and arguments."""

    family: str
    args: tuple[float, ...] = ()

    @property
    def spec(self) -> str:
        return format_spec(self.family, self.args)

    def __call__(self, samples: torch.Tensor) -> torch.Tensor:
        """Reduce ``samples`` ``(W, N)`` to ``(W,)``."""
        return _REDUCERS[self.family](samples, *self.args)


def format_number(value: float) -> str:
    """Decimal text with at least two decimals (``0.10``), rounded to 10 decimals so grid values
    such as ``0.01 + 9 * 0.01`` print as the number they stand for."""
    value = round(float(value), 10)
    text = f"{value:.2f}"
    if float(text) == value:
        return text
    return f"{value:.10f}".rstrip("0")


def format_spec(family: str, args: tuple[float, ...] = ()) -> str:
    """``("trimmed_mean", (0.1,))`` -> ``"trimmed_mean_0.10"``."""
    return "_".join([family, *(format_number(a) for a in args)])


def parse(spec: str) -> Aggregate:
    """Parse and check an aggregate spec; ``DataError`` (a ``ValueError``) says what is wrong."""
    if not isinstance(spec, str):
        raise DataError(f"aggregate must be a string like 'trimmed_mean_0.10', got {spec!r}")
    for family, pattern in _PATTERNS:
        match = pattern.match(spec.strip())
        if match:
            args = tuple(float(g) for g in match.groups())
            _check(spec, family, args)
            return Aggregate(family, args)
    raise DataError(
        f"malformed aggregate {spec!r}; expected one of: "
        + ", ".join("_".join([f, *(a.upper() for a in args)]) for f, args in FAMILIES.items())
    )


def _check(spec: str, family: str, args: tuple[float, ...]) -> None:
    named = dict(zip(FAMILIES[family], args, strict=True))
    if "fraction" in named:
        limit = 0.5 if family == "trimmed_mean" else 1.0
        if not 0.0 <= named["fraction"] < limit:
            raise DataError(f"aggregate {spec!r}: the trimmed fraction must be in [0, {limit})")
    if "q" in named and not 0.0 <= named["q"] <= 1.0:
        raise DataError(f"aggregate {spec!r}: the quantile must be in [0, 1]")
    if "w" in named and not 0.0 <= named["w"] <= 1.0:
        raise DataError(f"aggregate {spec!r}: the mix weight must be in [0, 1]")
    if any(not math.isfinite(a) for a in args):
        raise DataError(f"aggregate {spec!r}: arguments must be finite")


def aggregate(samples: torch.Tensor, spec: str) -> torch.Tensor:
    """Reduce ``samples`` ``(W, N)`` with the spec string; returns ``(W,)``."""
    return parse(spec)(samples)


def _mean(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=-1)


def _std(x: torch.Tensor) -> torch.Tensor:
    return x.std(dim=-1, correction=0)


def _order_statistic(x: torch.Tensor, k: int) -> torch.Tensor:
    """The ``k``-th smallest value (0-based) of each row: O(N), no full sort."""
    return torch.kthvalue(x, k + 1, dim=-1).values


def _quantile(x: torch.Tensor, q: float) -> torch.Tensor:
    position = q * (x.shape[-1] - 1)  # linear interpolation, as numpy.quantile's default
    below = math.floor(position)
    low = _order_statistic(x, below)
    fraction = position - below
    if fraction == 0.0:
        return low
    return low + fraction * (_order_statistic(x, below + 1) - low)


def _trimmed(x: torch.Tensor, low_fraction: float, high_fraction: float) -> torch.Tensor:
    """Mean of the sorted samples ``[low, N - high)``, from order statistics and masked sums
    (exact with ties) rather than a full sort."""
    n = x.shape[-1]
    low, high = math.floor(low_fraction * n), math.floor(high_fraction * n)
    if low + high >= n:
        raise DataError(f"trimming {low} + {high} of {n} samples leaves none")
    total = x.sum(dim=-1)
    if low:
        edge = _order_statistic(x, low - 1)[:, None]  # the largest dropped value
        under = x < edge
        total = total - torch.where(under, x, 0.0).sum(-1)
        total = total - edge[:, 0] * (low - under.sum(-1))
    if high:
        edge = _order_statistic(x, n - high)[:, None]  # the smallest dropped value
        over = x > edge
        total = total - torch.where(over, x, 0.0).sum(-1)
        total = total - edge[:, 0] * (high - over.sum(-1))
    return total / (n - low - high)


_REDUCERS = {
    "mean": _mean,
    "median": lambda x: _quantile(x, 0.5),
    "trimmed_mean": lambda x, f: _trimmed(x, f, f),
    "lower_trimmed_mean": lambda x, f: _trimmed(x, f, 0.0),
    "upper_trimmed_mean": lambda x, f: _trimmed(x, 0.0, f),
    "quantile": _quantile,
    "mean_minus_std": lambda x, s: _mean(x) - s * _std(x),
    "mean_plus_std": lambda x, s: _mean(x) + s * _std(x),
    "mean_quantile_mix": lambda x, q, w: w * _quantile(x, q) + (1.0 - w) * _mean(x),
    "quantile_plus_std": lambda x, q, s: _quantile(x, q) + s * _std(x),
}
