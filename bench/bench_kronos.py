"""Benchmark: the reference Kronos predictor loop against our two-stage trial.

Twenty one-step windows (the validation window: the 20 targets before the last 20 rows) of a
daily-bar CSV, sampled with the trading code's best setting (T 0.152, top_k 20, top_p 0.83,
sample_count 192, max_context 232, clip 1.85) on random weights of each preset.

* reference: ``KronosPredictor.predict`` (kronos-model-arch 0.1.0) per window, pred_len 1;
  both sides first run one untimed window (an earlier target) to load kernels;
* ours cold: a freshly loaded backend, empty caches (stage 1 + stage 2);
* ours warm: the next trial with other sampling settings (new seed, T 0.3): stage 1 cached;
* ours warm, same: the same trial again (every cache hit).

Runs where both import: the reference virtualenv with this repo on ``sys.path``::

    /work/refvenv/bin/python bench/bench_kronos.py --data ../shared/data/BTCUSD.csv \
        --presets tiny,base --device cpu
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from model import Kronos, KronosPredictor, KronosTokenizer  # noqa: E402  (reference package)

from models.kronos import write_random_checkpoint  # noqa: E402
from objectives.bars import bars_from_frame  # noqa: E402
from objectives.kronos import load  # noqa: E402

CONFIG = {
    "temperature": 0.152, "top_k": 20, "top_p": 0.83, "sample_count": 192,
    "max_context": 232, "clip": 1.85,
}  # fmt: skip
OTHER = {**CONFIG, "temperature": 0.3}
PRICE_COLS = ["open", "high", "low", "close"]


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def device_name(device: str) -> str:
    return torch.cuda.get_device_name() if device.startswith("cuda") else "cpu"


def reference_loop(
    folder: Path, frame: pd.DataFrame, targets: np.ndarray, device: str, warmup: bool = True
) -> tuple:
    tokenizer = KronosTokenizer.from_pretrained(str(folder / "tokenizer")).eval()
    model = Kronos.from_pretrained(str(folder / "model")).eval()
    predictor = KronosPredictor(
        model, tokenizer, device=device, max_context=CONFIG["max_context"], clip=CONFIG["clip"]
    )
    mc = CONFIG["max_context"]
    torch.manual_seed(0)
    if warmup:  # one untimed window: kernels loaded, allocator primed
        i = int(targets[0]) - 1
        stamps = frame["timestamp"].iloc[i - mc : i + 1].reset_index(drop=True)
        predictor.predict(
            frame.iloc[i - mc : i][PRICE_COLS + ["volume"]].reset_index(drop=True),
            stamps[:-1], stamps[-1:], pred_len=1, T=1.0, top_k=20, top_p=1.0,
            sample_count=CONFIG["sample_count"], verbose=False,
        )  # fmt: skip
    closes = []
    sync(device)
    started = time.perf_counter()
    for i in targets:
        ctx = frame.iloc[i - mc : i]
        stamps = frame["timestamp"].iloc[i - mc : i + 1].reset_index(drop=True)
        pred = predictor.predict(
            ctx[PRICE_COLS + ["volume"]].reset_index(drop=True), stamps[:-1], stamps[-1:],
            pred_len=1, T=CONFIG["temperature"], top_k=CONFIG["top_k"], top_p=CONFIG["top_p"],
            sample_count=CONFIG["sample_count"], verbose=False,
        )  # fmt: skip
        closes.append(float(pred["close"].iloc[0]))
    sync(device)
    return time.perf_counter() - started, np.array(closes)


def ours(folder: Path, frame: pd.DataFrame, targets: np.ndarray, device: str) -> dict:
    bars = bars_from_frame(frame, "BENCH")
    # one untimed window on a throw-away backend: kernels loaded, allocator primed
    load(checkpoint=str(folder), device=device).evaluator(bars).forecast_close(
        targets[:1] - 1, CONFIG, 0
    )
    backend = load(checkpoint=str(folder), device=device)  # cold: empty caches
    evaluator = backend.evaluator(bars)
    out = {}
    for label, config, seed in (("cold", CONFIG, 1), ("warm", OTHER, 2), ("warm_same", OTHER, 2)):
        sync(device)
        started = time.perf_counter()
        closes = evaluator.forecast_close(targets, config, seed)
        sync(device)
        out[label] = time.perf_counter() - started
        out[f"{label}_closes"] = closes
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "BTCUSD.csv"))
    parser.add_argument("--presets", default="tiny,base")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    frame = pd.read_csv(args.data)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True).dt.tz_localize(None)
    targets = np.arange(len(frame) - 40, len(frame) - 20)
    naive = frame["close"].to_numpy()[targets - 1]
    actual = frame["close"].to_numpy()[targets]
    rows = []
    for preset in args.presets.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            write_random_checkpoint(folder, preset, seed=0)
            mine = ours(folder, frame, targets, args.device)
            ref_s, ref_closes = reference_loop(folder, frame, targets, args.device)
        row = {
            "preset": preset, "device": args.device,
            "device_name": device_name(args.device),
            "torch_threads": torch.get_num_threads(), "windows": len(targets),
            "sample_count": CONFIG["sample_count"], "reference_s": ref_s,
            "ours_cold_s": mine["cold"], "ours_warm_s": mine["warm"],
            "ours_warm_same_s": mine["warm_same"],
            "speedup_cold": ref_s / mine["cold"], "speedup_warm": ref_s / mine["warm"],
            "speedup_warm_same": ref_s / mine["warm_same"],
            # random weights: both forecasts are meaningless, but they should be alike
            "reference_mae": float(np.mean(np.abs(ref_closes - actual))),
            "ours_mae": float(np.mean(np.abs(mine["cold_closes"] - actual))),
            "naive_mae": float(np.mean(np.abs(naive - actual))),
        }  # fmt: skip
        rows.append(row)
        print(json.dumps(row), flush=True)
    print()
    print("| preset | device | reference loop (s) | ours cold (s) | ours warm (s) | "
          "ours warm, same trial (s) | ref/cold | ref/warm | ref/warm-same |")  # fmt: skip
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['preset']} | {r['device_name']} | {r['reference_s']:.2f} | "
            f"{r['ours_cold_s']:.3f} | {r['ours_warm_s']:.3f} | {r['ours_warm_same_s']:.4f} | "
            f"{r['speedup_cold']:.1f}x | {r['speedup_warm']:.0f}x | "
            f"{r['speedup_warm_same']:.0f}x |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
