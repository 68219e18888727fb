"""Argument types of the command line that refuse a bad value while parsing, before anything is
created: one ``error: argument --X: ...`` line and exit code 2 (``parser.Parser.error``)."""

from __future__ import annotations

import argparse

from errors import OptimiseError
from models.devices import check_device
from objectives.seeds import SEED_RANGE, check_seed


def seed(text: str) -> int:
    """``--seed``: what numpy's ``SeedSequence`` takes and a study can store."""
    try:
        return check_seed(int(text))
    except ValueError:  # not an integer, or out of range (DataError is a ValueError)
        raise argparse.ArgumentTypeError(f"{text!r} is not a seed: {SEED_RANGE}") from None


def device(text: str) -> str:
    """``--device``: a torch device this torch build and machine have."""
    try:
        return check_device(text)
    except OptimiseError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def top(text: str) -> int:
    """``--top``: how many settings per study, at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is below 1 (give how many settings to show)")
    return value


def size(text: str) -> str:
    """``--cache-size``: bytes, or a number with K, M, G or T (kept as given, checked here)."""
    from objectives.disk_cache import parse_size

    try:
        parse_size(text)
    except OptimiseError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def seconds(text: str) -> float:
    """``--watch``: a positive number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of seconds")
    return value
