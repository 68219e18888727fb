"""Benchmark: a 7-step Kronos path (``--task trading``) with cached context windows against
re-running the whole window per path and step, as upstream's ``auto_regressive_inference``.

Random weights of each preset, the trading code's default setting (T 0.152, top_p 0.83, top_k
20, sample_count 192, max_context 232, clip 1.85), the wrapper's frame, origins from the end of
the CSV's validation window. Both sides run on the same stage 1 (already cached), with the same
draws, and give the same paths (``tests/objectives/test_kronos_paths.py``); each is timed over
the same windows, side by side in one process:

* cached: the trial's stage 2 as the project runs it (path rows of a few positions against the
  cached slid windows);
* full window: upstream's way (every distinct path re-runs its whole window at every step).

    .venv/bin/python bench/bench_kronos_paths.py --data ../shared/data/BTCUSD.csv \\
        --presets tiny,base --windows 2 --out docs/bench-kronos-paths.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.kronos import write_random_checkpoint  # noqa: E402
from objectives.bars import load_bars  # noqa: E402
from objectives.evaluator import load_backend  # noqa: E402
from objectives.kronos.paths import full_window_paths, sample_paths  # noqa: E402
from objectives.kronos.space import TRADING_BEST  # noqa: E402
from objectives.tasks import TRADING  # noqa: E402

CONFIG = TRADING_BEST  # the trading code's best known setting
HORIZON = 7


def timed(function, *args) -> tuple[float, tuple]:
    start = time.perf_counter()
    out = function(*args)
    return time.perf_counter() - start, out


def bench_preset(
    csv: Path, preset: str, windows: int, threads: int, samples: int, full: bool
) -> dict[str, object]:
    torch.set_num_threads(threads)
    folder = Path(tempfile.mkdtemp(prefix=f"kronos-{preset}-"))
    write_random_checkpoint(folder, preset=preset, seed=0)
    backend = load_backend("kronos", checkpoint=str(folder / "model"),
                           tokenizer=str(folder / "tokenizer"))  # fmt: skip
    bars = load_bars(csv.parent, csv.stem)
    evaluator = backend.evaluator(bars, TRADING, HORIZON)
    settings = evaluator.settings({**CONFIG, "sample_count": samples})
    origins = list(range(len(bars) - 20 - 2 * HORIZON - windows, len(bars) - 20 - 2 * HORIZON))
    start = time.perf_counter()
    stage1 = evaluator._windows(origins, settings)
    stage1_s = time.perf_counter() - start
    rows = {"cached": 0, "full_window": 0}
    seconds = {"cached": 0.0, "full_window": 0.0}
    paths = 0
    for i, window in zip(origins, stage1, strict=True):
        future = evaluator.future_stamp(i, settings.context)
        model = (backend.predictor, backend.tokenizer, window, settings)
        sides = [("cached", sample_paths)] + [("full_window", full_window_paths)] * full
        for name, function in sides:
            generator = torch.Generator().manual_seed(i)
            s, (bars_out, counts, run) = timed(function, *model, generator, future, 232)
            seconds[name] += s
            rows[name] += run
        paths += len(counts)
    return {
        "preset": preset,
        "symbol": csv.stem,
        "windows": windows,
        "sample_count": samples,
        "threads": threads,
        "distinct_paths": paths,
        "stage1_s": round(stage1_s, 3),
        "stage1_passes": backend.passes,
        "cached_s": round(seconds["cached"], 3),
        "full_window_s": round(seconds["full_window"], 3) if full else None,
        "ratio": round(seconds["full_window"] / seconds["cached"], 1) if full else None,
        "path_rows": rows["cached"],
        "window_tokens_full": rows["full_window"] * settings.context,
        "device": "cpu",
        "torch": torch.__version__,
    }


def table(results: list[dict[str, object]]) -> str:
    lines = [
        "| preset | sample_count | windows | distinct paths | stage 1 (7 passes/window) "
        "| cached paths | full-window paths | ratio |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(
            f"| {r['preset']} | {r['sample_count']} | {r['windows']} | {r['distinct_paths']} "
            f"| {r['stage1_s']} s | {r['cached_s']} s | {r['full_window_s'] or 'not run'} "
            f"| {str(r['ratio']) + 'x' if r['ratio'] else '-'} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a daily-bar CSV")
    parser.add_argument("--presets", default="tiny,base")
    parser.add_argument("--windows", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sample-count", type=int, default=192)
    parser.add_argument("--no-full-window", action="store_true", help="time the cached side only")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    results = [
        bench_preset(args.data, p, args.windows, args.threads, args.sample_count,
                     not args.no_full_window)
        for p in args.presets.split(",")
    ]  # fmt: skip
    print(table(results))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
