"""A warm Kronos trial's marginal cost: stage 1 cached, only the sampling settings change.

Tiny random weights, BTCUSD, the 20 validation origins of the chosen task and horizon, the
trading code's ``max_context`` 232 and ``clip`` 1.85; one untimed forecast fills stage 1 (and
any per-window stage-2 cache), then ``--trials`` forecasts with other temperatures, filters and
sample counts (drawn with a fixed seed) are timed, the study's way (``evaluate``: forecast +
metrics). Prints the median and the range in ms.

    .venv/bin/python bench/bench_kronos_marginal.py --horizon 7 --trials 10
    .venv/bin/python bench/bench_kronos_marginal.py --horizon 1 --task levels --trials 10
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.kronos import write_random_checkpoint  # noqa: E402
from objectives.bars import load_bars  # noqa: E402
from objectives.evaluator import evaluate, load_backend  # noqa: E402
from objectives.kronos.space import TRADING_BEST  # noqa: E402
from objectives.tasks import LEVELS, TRADING  # noqa: E402
from objectives.windows import WindowSpec, split  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def sampling_settings(rng: np.random.Generator, broad: bool) -> dict[str, object]:
    """The trading code's context and clip, other sampling settings: near its best (another
    temperature in 0.1-0.3), or ``broad`` (the search space's wide corners too)."""
    config: dict[str, object] = {**TRADING_BEST, "temperature": float(rng.uniform(0.1, 0.3))}
    if not broad:
        return config
    config["temperature"] = float(rng.uniform(0.1, 1.5))
    config["sample_count"] = int(rng.integers(8, 400))
    if rng.random() < 0.5:
        config.update(top_k=int(rng.integers(1, 64)), top_p=1.0)
    else:
        config.update(top_k=0, top_p=float(rng.uniform(0.3, 1.0)))
    return config


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--horizon", type=int, default=7)
    parser.add_argument("--task", default="trading")
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--broad", action="store_true", help="wide sampling settings")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    folder = Path(tempfile.mkdtemp(prefix="kronos-marginal-"))
    write_random_checkpoint(folder, preset="tiny", seed=0)
    backend = load_backend("kronos", checkpoint=str(folder / "model"),
                           tokenizer=str(folder / "tokenizer"))  # fmt: skip
    bars = load_bars(DATA, "BTCUSD")
    task = {"levels": LEVELS, "trading": TRADING}[args.task]
    evaluator = backend.evaluator(bars, task, args.horizon)
    spec = WindowSpec(val_window=20, test_window=20, horizon=args.horizon)
    targets = split(len(bars), spec).validation
    evaluate(evaluator, bars, targets, evaluator.settings(TRADING_BEST), 0)  # stage 1
    rng = np.random.default_rng(0)
    calls: list[int] = []  # s2-logit calls of the timed trials, and their candidate rows
    original = backend.predictor.s2_logits

    def counted(last_hidden: torch.Tensor, kv: object, s1: torch.Tensor) -> torch.Tensor:
        calls.append(s1.numel())
        return original(last_hidden, kv, s1)

    backend.predictor.s2_logits = counted
    ms = []
    for _ in range(args.trials):
        settings = evaluator.settings(sampling_settings(rng, args.broad))
        started = time.perf_counter()
        evaluate(evaluator, bars, targets, settings, 0)
        ms.append(1000 * (time.perf_counter() - started))
    print(json.dumps({"task": args.task, "horizon": args.horizon, "trials": args.trials,
                      "settings": "broad" if args.broad else "near the trading code's best",
                      "median_ms": round(float(np.median(ms)), 1),
                      "min_ms": round(min(ms), 1), "max_ms": round(max(ms), 1),
                      "s2_calls_per_trial": len(calls) / args.trials,
                      "s2_rows_per_trial": sum(calls) / args.trials}))  # fmt: skip


if __name__ == "__main__":
    main()
