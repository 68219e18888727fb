"""Benchmark: the reference Toto forecaster loop against our two-stage trial.

For the validation window of a symbol (the ``--windows`` targets before the last
``--windows`` rows), with random weights of each preset, side by side in one run:

* reference: ``TotoForecaster.forecast`` per window (``samples_per_batch`` 512, or the sample
  count when smaller), prediction length 1, then the same aggregate;
* ours, cold: stage 1 empty (one batched forward pass over the windows) + stage 2;
* ours, warm: stage 1 cached, i.e. what every later trial of a study costs.

Needs an environment where both our code and ``toto-ts`` import (e.g. the reference
virtualenv; the repo root is put on ``sys.path``)::

    /work/refvenv/bin/python bench/bench_toto.py --data ../shared/data/BTCUSD.csv \
        --presets tiny --device cpu --out docs/bench-toto-cpu.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
warnings.simplefilter("ignore")

from toto.data.util.dataset import MaskedTimeseries  # noqa: E402
from toto.inference.forecaster import TotoForecaster  # noqa: E402
from toto.model.toto import Toto  # noqa: E402

from models.toto import write_random_checkpoint  # noqa: E402
from objectives.bars import bars_from_frame  # noqa: E402
from objectives.toto import load, parse  # noqa: E402

AGGREGATE = "trimmed_mean_0.10"
MAX_CONTEXT = 4096


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def reference_trial(
    forecaster: TotoForecaster, close: np.ndarray, targets: np.ndarray, n: int, device: str
) -> np.ndarray:
    """The reference loop: one ``forecast`` call per window, then the aggregate."""
    reduce = parse(AGGREGATE)
    out = []
    for i in targets:
        series = torch.tensor(close[max(0, i - MAX_CONTEXT) : i], dtype=torch.float32)
        series = series[None].to(device)  # (1, L)
        inputs = MaskedTimeseries(
            series=series,
            padding_mask=torch.ones_like(series, dtype=torch.bool),
            id_mask=torch.zeros_like(series),
            timestamp_seconds=torch.zeros_like(series),
            time_interval_seconds=torch.full((1,), 86_400, device=device),
        )
        forecast = forecaster.forecast(
            inputs, prediction_length=1, num_samples=n, samples_per_batch=min(512, n)
        )
        out.append(reduce(forecast.samples[0, 0].double()).item())
    return np.array(out)


def timed(fn, device: str) -> tuple[float, object]:
    sync(device)
    started = time.perf_counter()
    result = fn()
    sync(device)
    return time.perf_counter() - started, result


def bench_preset(args, preset: str, bars, targets: np.ndarray) -> list[dict]:
    device = args.device
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        write_random_checkpoint(Path(folder), preset, seed=0)
        reference = Toto.load_from_checkpoint(folder, map_location=device).eval()
        forecaster = TotoForecaster(reference.model)
        backend = load(folder, device=device)
    evaluator = backend.evaluator(bars)
    close = bars.close
    ref_targets = targets[: args.ref_windows]
    # warm-up (CUDA context, kernels, allocator) for both sides, not timed
    reference_trial(forecaster, close, ref_targets[:1], 64, device)
    evaluator.forecast_close(targets, {"num_samples": 64, "aggregate": AGGREGATE}, 0)
    for n in args.samples:
        config = {"num_samples": n, "aggregate": AGGREGATE}
        torch.manual_seed(0)
        run_reference = partial(reference_trial, forecaster, close, ref_targets, n, device)
        ref_s, _ = timed(run_reference, device)
        cold = []
        for repeat in range(args.cold_repeats):
            backend.stage1_cache.clear()
            seconds, _ = timed(partial(evaluator.forecast_close, targets, config, repeat), device)
            cold.append(seconds)
        warm = []
        for repeat in range(args.warm_repeats):
            seconds, _ = timed(partial(evaluator.forecast_close, targets, config, repeat), device)
            warm.append(seconds)
        row = {
            "preset": preset,
            "device": device,
            "num_samples": n,
            "windows": len(targets),
            "reference_windows": len(ref_targets),
            "reference_s": ref_s,
            "reference_s_per_window": ref_s / len(ref_targets),
            "ours_cold_s": statistics.median(cold),
            "ours_warm_s": statistics.median(warm),
        }
        row["ours_cold_s_per_window"] = row["ours_cold_s"] / len(targets)
        row["ours_warm_s_per_window"] = row["ours_warm_s"] / len(targets)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def markdown(rows: list[dict]) -> str:
    """A table of the measurements with the ratios the issue asks for."""
    lines = [
        "| preset | device | samples | reference (s, windows) | ours cold (s) | ours warm (s) "
        "| speed-up warm vs reference, per window | speed-up cold vs reference, per window "
        "| warm / warm at 64 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    warm64 = {(r["preset"], r["device"]): r["ours_warm_s"] for r in rows if r["num_samples"] == 64}
    for r in rows:
        base = warm64.get((r["preset"], r["device"]))
        flat = f"{r['ours_warm_s'] / base:.2f}x" if base else "-"
        lines.append(
            f"| {r['preset']} | {r['device']} | {r['num_samples']} "
            f"| {r['reference_s']:.3f} ({r['reference_windows']}) "
            f"| {r['ours_cold_s']:.4f} | {r['ours_warm_s']:.4f} "
            f"| {r['reference_s_per_window'] / r['ours_warm_s_per_window']:,.0f}x "
            f"| {r['reference_s_per_window'] / r['ours_cold_s_per_window']:,.0f}x | {flat} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/BTCUSD.csv")
    parser.add_argument("--presets", nargs="+", default=["tiny", "base"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--windows", type=int, default=20)
    parser.add_argument("--ref-windows", type=int, default=None, help="reference windows timed")
    parser.add_argument("--samples", type=int, nargs="+", default=[64, 4096])
    parser.add_argument("--cold-repeats", type=int, default=3)
    parser.add_argument("--warm-repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    args.ref_windows = args.ref_windows or args.windows
    bars = bars_from_frame(pd.read_csv(args.data), args.data.stem, source=str(args.data))
    n = len(bars)
    targets = np.arange(n - 2 * args.windows, n - args.windows)  # the validation window
    rows = []
    for preset in args.presets:
        rows.extend(bench_preset(args, preset, bars, targets))
    info = {
        "command": " ".join(sys.argv),
        "torch": torch.__version__,
        "device_name": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
        "threads": torch.get_num_threads(),
        "rows": rows,
    }
    print(markdown(rows))
    if args.out:
        args.out.write_text(json.dumps(info, indent=2) + "\n")


if __name__ == "__main__":
    main()
