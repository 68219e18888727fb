"""Reduce forecast samples to one number: the trading code's ``aggregate`` spec strings.

A spec means exactly what the trading code's parser (``aggregate_with_spec``) makes of it.
The spec is lower-cased and stripped (an empty spec is ``mean``), then read by the first
rule that applies, in this order:

================================  =========================================================
``mean``                          the sample mean
``median``                        ``numpy.median``
``p10``, ``p90``                  the 0.10 and 0.90 quantiles
``trimmed_mean_F``                sort; ``t = int(N * F)``; mean of ``sorted[t : N - t]``
                                  (the plain mean when ``t == 0``); ``F`` must be < 0.5
``lower_trimmed_mean_F``          mean of the lowest ``max(1, int(N * (1 - F)))`` sorted
                                  samples: it drops the *top* ``F``
``upper_trimmed_mean_F``          mean of ``sorted[min(N - 1, int(N * F)):]``: it drops the
                                  *bottom* ``F``
``quantile_Q``                    the ``Q`` quantile (linear interpolation, as
                                  ``numpy.quantile``); any spec starting ``quantile_``,
                                  so ``quantile_plus_std_Q_S`` is the ``S`` quantile
``mean_minus_std_S``              ``mean - S * std``
``mean_plus_std_S``               ``mean + S * std``
``mean_quantile_mix_Q_W``         ``W * mean + (1 - W) * quantile_Q``, ``W`` clipped to [0, 1]
================================  =========================================================

Each rule reads only the *last* ``_``-separated token (``mean_quantile_mix`` its last two).
``F`` and ``Q`` are fractions: a token above 1 is a percentage (``trimmed_mean_10`` is 0.10,
``quantile_15`` is 0.15; ``1`` stays 1.0), and the result must lie in [0, 1]. ``S`` and ``W``
are plain numbers. ``std`` is the population standard deviation (``ddof=0``). Everything is
computed in float64.

:func:`parse` returns the effective family and values (``p10`` is ``quantile`` 0.1); its
``spec`` is the canonical text, which the trading code reads back to the same function with
the same float values. Every reduction works on a ``(W, N)`` tensor of ``W`` windows' samples
at once and returns ``(W,)`` float64.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from objectives.exceptions import DataError

#: family -> names of its numeric arguments, in spec order: every family :func:`parse` returns
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
}

_EXPECTED = (
    "expected mean, median, p10, p90, trimmed_mean_F, lower_trimmed_mean_F, "
    "upper_trimmed_mean_F, quantile_Q, mean_minus_std_S, mean_plus_std_S or "
    "mean_quantile_mix_Q_W"
)


@dataclass(frozen=True)
class Aggregate:
    """A parsed spec: its family and effective arguments."""

    family: str
    args: tuple[float, ...] = ()

    @property
    def spec(self) -> str:
        """The canonical spec string."""
        return format_spec(self.family, self.args)

    def __call__(self, samples: torch.Tensor) -> torch.Tensor:
        """Reduce ``samples`` ``(W, N)`` to ``(W,)`` float64."""
        x = torch.as_tensor(samples).to(torch.float64)
        if x.ndim == 0 or x.shape[-1] == 0:
            raise DataError(f"aggregate {self.spec!r} needs at least one sample per window")
        return _REDUCERS[self.family](x, *self.args)


def format_number(value: float) -> str:
    """Decimal text that reads back as exactly ``value``: two decimals (``0.10``) where that
    round-trips, else the shortest exact form (``0.015``, ``1e-05``)."""
    value = float(value)
    text = f"{value:.2f}"
    if abs(value) < 1e15 and float(text) == value:
        return text
    return repr(value)


def format_spec(family: str, args: tuple[float, ...] = ()) -> str:
    """``("trimmed_mean", (0.1,))`` -> ``"trimmed_mean_0.10"``."""
    return "_".join([family, *(format_number(a) for a in args)])


def parse(spec: object) -> Aggregate:
    """Read a spec as the trading code does; ``DataError`` (a ``ValueError``) for any spec it
    refuses, and for numbers that are not finite."""
    if spec is not None and not isinstance(spec, str):
        raise DataError(f"aggregate must be a string like 'trimmed_mean_0.10', got {spec!r}")
    method = (spec or "mean").strip().lower()
    family, args = _read(method, spec)
    return Aggregate(family, args)


def aggregate(samples: torch.Tensor, spec: str) -> torch.Tensor:
    """Reduce ``samples`` ``(W, N)`` with the spec string; returns ``(W,)`` float64."""
    return parse(spec)(samples)


def _read(method: str, spec: str | None) -> tuple[str, tuple[float, ...]]:
    """The trading parser's dispatch, in its order."""
    if method in ("mean", "median"):
        return method, ()
    if method == "p10":
        return "quantile", (0.10,)
    if method == "p90":
        return "quantile", (0.90,)
    last = method.split("_")[-1]
    if method.startswith("trimmed_mean_"):
        fraction = _fraction(last, spec, "the trimmed fraction F")
        if not 0.0 <= fraction < 0.5:
            raise DataError(
                f"aggregate {spec!r}: trimmed_mean_F needs F in [0, 0.5) (or percent below 50), "
                f"got {fraction!r}"
            )
        return "trimmed_mean", (fraction,)
    if method.startswith("lower_trimmed_mean_"):
        return "lower_trimmed_mean", (_fraction(last, spec, "the trimmed fraction F"),)
    if method.startswith("upper_trimmed_mean_"):
        return "upper_trimmed_mean", (_fraction(last, spec, "the trimmed fraction F"),)
    if method.startswith("quantile_"):  # before quantile_plus_std_, as in the trading code
        return "quantile", (_fraction(last, spec, "the quantile Q"),)
    if method.startswith("mean_minus_std_"):
        return "mean_minus_std", (_number(last, spec, "the std multiple S"),)
    if method.startswith("mean_plus_std_"):
        return "mean_plus_std", (_number(last, spec, "the std multiple S"),)
    if method.startswith("mean_quantile_mix_"):
        parts = method.split("_")
        if len(parts) < 5:
            raise DataError(
                f"aggregate {spec!r}: mean_quantile_mix needs a quantile and a weight, "
                "e.g. mean_quantile_mix_0.20_0.70"
            )
        q = _fraction(parts[-2], spec, "the quantile Q")
        # W is clipped to [0, 1] as the trading code does, so only nan is refused
        w = float(np.clip(_number(parts[-1], spec, "the mean weight W", finite=False), 0.0, 1.0))
        return "mean_quantile_mix", (q, w)
    raise DataError(f"malformed aggregate {spec!r}: unknown method; {_EXPECTED}")


def _number(token: str, spec: str | None, what: str, *, finite: bool = True) -> float:
    """``float(token)``; refuses nan (and, when ``finite``, infinities), which the trading code
    would take and turn into nan or infinite forecasts."""
    try:
        value = float(token)
    except ValueError:
        raise DataError(f"aggregate {spec!r}: {what} must be a number, got {token!r}") from None
    if math.isnan(value) or (finite and math.isinf(value)):
        raise DataError(f"aggregate {spec!r}: {what} must be a finite number, got {token!r}")
    return value


def _fraction(token: str, spec: str | None, what: str) -> float:
    """The trading code's ``parse_fraction``: above 1 is a percentage; must end in [0, 1]."""
    try:
        value = float(token)
    except ValueError:
        raise DataError(f"aggregate {spec!r}: {what} must be a number, got {token!r}") from None
    if value > 1.0:
        value /= 100.0
    if not 0.0 <= value <= 1.0:
        raise DataError(
            f"aggregate {spec!r}: {what} must be a fraction in [0, 1] or a percentage in "
            f"(1, 100], got {token!r}"
        )
    return value


def _mean(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=-1)


def _std(x: torch.Tensor) -> torch.Tensor:
    """Population std (``ddof=0``), two-pass like ``numpy.std``."""
    return (x - x.mean(dim=-1, keepdim=True)).square().mean(dim=-1).sqrt()


def _sorted(x: torch.Tensor) -> torch.Tensor:
    return torch.sort(x, dim=-1).values


def _quantile_of_sorted(s: torch.Tensor, q: float) -> torch.Tensor:
    """``numpy.quantile(x, q)`` (method ``linear``) from the sorted samples, same arithmetic."""
    n = s.shape[-1]
    position = (n - 1) * q
    if position >= n - 1:
        return s[..., -1]
    below = math.floor(position)
    gamma = position - below
    a, b = s[..., below], s[..., below + 1]
    diff = b - a
    if gamma >= 0.5:
        return b - diff * (1 - gamma)
    return a + diff * gamma


def _quantile(x: torch.Tensor, q: float) -> torch.Tensor:
    return _quantile_of_sorted(_sorted(x), q)


def _median(x: torch.Tensor) -> torch.Tensor:
    """``numpy.median``: the middle sample, or the mean of the middle two."""
    s = _sorted(x)
    n = s.shape[-1]
    if n % 2:
        return s[..., n // 2]
    return (s[..., n // 2 - 1] + s[..., n // 2]) / 2


def _trimmed_mean(x: torch.Tensor, fraction: float) -> torch.Tensor:
    n = x.shape[-1]
    t = int(n * fraction)
    if t == 0 or 2 * t >= n:
        return _mean(x)
    return _sorted(x)[..., t : n - t].mean(dim=-1)


def _lower_trimmed_mean(x: torch.Tensor, fraction: float) -> torch.Tensor:
    """Keeps the lowest ``max(1, int(N * (1 - F)))`` samples (drops the top ``F``)."""
    n = x.shape[-1]
    cutoff = max(1, int(n * (1.0 - fraction)))
    return _sorted(x)[..., :cutoff].mean(dim=-1)


def _upper_trimmed_mean(x: torch.Tensor, fraction: float) -> torch.Tensor:
    """Keeps ``sorted[min(N - 1, int(N * F)):]`` (drops the bottom ``F``)."""
    n = x.shape[-1]
    start = min(n - 1, int(n * fraction))
    return _sorted(x)[..., start:].mean(dim=-1)


def _mean_quantile_mix(x: torch.Tensor, q: float, w: float) -> torch.Tensor:
    return w * _mean(x) + (1 - w) * _quantile(x, q)


#: family -> its reducer of ``(W, N)`` samples, taking the family's arguments after them
_REDUCERS: dict[str, Callable[..., torch.Tensor]] = {
    "mean": _mean,
    "median": _median,
    "trimmed_mean": _trimmed_mean,
    "lower_trimmed_mean": _lower_trimmed_mean,
    "upper_trimmed_mean": _upper_trimmed_mean,
    "quantile": _quantile,
    "mean_minus_std": lambda x, s: _mean(x) - s * _std(x),
    "mean_plus_std": lambda x, s: _mean(x) + s * _std(x),
    "mean_quantile_mix": _mean_quantile_mix,
}
