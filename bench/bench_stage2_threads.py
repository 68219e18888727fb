"""Kronos stage 2 with its bar head on one thread, against all of it on the process's threads.

A warm trial (stage 1 cached) is stage 2 only: sample, s2 logits of the distinct s1 draws,
decode the distinct pairs. The decoder's bar head runs under ``models.threads.one_thread``
(its last bits depended on the thread count); this measures what that costs, and what running
all of stage 2 on one thread would cost. Each setting's 20 validation windows are timed in the
three ways, alternating, median of ``--repeats``.

    .venv/bin/python bench/bench_stage2_threads.py --checkpoint CKPT \
        --data ../shared/data/BTCUSD.csv
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import models.kronos.tokenizer as tokenizer_module  # noqa: E402
from models.kronos import load_kronos  # noqa: E402
from models.threads import one_thread  # noqa: E402
from objectives.bars import load_bars  # noqa: E402
from objectives.kronos.evaluator import KronosBackend  # noqa: E402

SETTINGS = [
    {"temperature": 0.152, "top_p": 0.83, "top_k": 20, "sample_count": 192},  # trading best
    {"temperature": 1.0, "top_p": 0.95, "top_k": 0, "sample_count": 256},
    {"temperature": 0.9, "top_p": 0.67, "top_k": 0, "sample_count": 8},
]
CONTEXT = {"max_context": 232, "clip": 1.85}
WAYS = ("head on one thread (shipped)", "all on the process's threads", "all on one thread")


def timed(evaluator, targets: np.ndarray, settings: dict, way: str) -> float:
    """Seconds for the windows' forecasts (stage 2 only once stage 1 is cached)."""
    tokenizer_module.one_thread = one_thread if way == WAYS[0] else contextlib.nullcontext
    outer = one_thread() if way == WAYS[2] else contextlib.nullcontext()
    start = time.perf_counter()
    with outer:
        evaluator.forecast_bars(targets, settings, seed=1)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--data", type=Path, required=True, help="a <SYMBOL>.csv of daily bars")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    bars = load_bars(args.data.parent, args.data.stem)
    evaluator = KronosBackend(load_kronos(args.checkpoint)).evaluator(bars)
    n = len(bars.prices)
    targets = np.arange(n - 40, n - 20)  # the validation window
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.checkpoint}")
    print(f"| setting | {' (s) | '.join(WAYS)} (s) |")
    print("| --- |" + " ---: |" * len(WAYS))
    for sampling in SETTINGS:
        settings = {**sampling, **CONTEXT}
        timed(evaluator, targets, settings, WAYS[0])  # stage 1 into the cache, kernels loaded
        seconds: dict[str, list[float]] = {way: [] for way in WAYS}
        for _ in range(args.repeats):
            for way in WAYS:
                seconds[way].append(timed(evaluator, targets, settings, way))
        name = ", ".join(f"{k} {v}" for k, v in sampling.items())
        cells = " | ".join(f"{statistics.median(seconds[way]):.3f}" for way in WAYS)
        print(f"| {name} | {cells} |")


if __name__ == "__main__":
    main()
