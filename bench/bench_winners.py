"""Trustworthy winners, measured: confirmation, exact re-scoring, live latency.

1. ``--trials`` (200) per model on a symbol with tiny random checkpoints: the exported record's
   first-pass best vs confirmed mean ± SE and its test MAE; every group of trials with equal
   parameters checked for equal values.
2. Every trial of a ``--rescore-kronos`` (40) trial Kronos and ``--rescore-toto`` (60) trial
   Toto study re-scored by ``optimise forecast --window validation --seed <study seed>`` in a
   fresh process with one thread, compared bit for bit with the trial's stored forecasts.
3. The live ``latency_s`` a record would carry for tiny and base-size random Kronos at two
   ``sample_count`` values.

    python bench/bench_winners.py --data-dir ../shared/data --out docs/bench-winners.json
    python bench/bench_winners.py --data-dir ../shared/data --rescore-only
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import optuna

REPO = Path(__file__).resolve().parents[1]
OPTIMISE = [sys.executable, "-m", "optimise"]


def run(*args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [*OPTIMISE, *args], cwd=REPO, capture_output=True, text=True, env=env, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"optimise {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def launch(work: Path, model: str, checkpoint: Path, data: Path, symbol: str, n: int) -> dict:
    storage = f"sqlite:///{work / f'{model}-{n}.db'}"
    store = work / f"store-{model}-{n}"
    started = time.perf_counter()
    run(
        "launch", "--model", model, "--checkpoint", str(checkpoint), "--symbols", symbol,
        "--data-dir", str(data), "--n-trials", str(n), "--storage", storage,
        "--store", str(store), "--no-progress",
    )  # fmt: skip
    wall = time.perf_counter() - started
    record = json.loads((store / model / f"{symbol}.json").read_text())
    study = optuna.load_study(study_name=record["metadata"]["study_name"], storage=storage)
    return {"storage": storage, "record": record, "study": study, "wall_s": wall}


def equal_params_equal_values(study: optuna.Study) -> dict:
    groups: dict[str, set[float]] = defaultdict(set)
    for trial in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
        groups[json.dumps(trial.params, sort_keys=True)].add(trial.value)
    return {
        "distinct_configurations": len(groups),
        "complete_trials": len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))),
        "groups_with_more_than_one_value": sum(len(v) > 1 for v in groups.values()),
    }


def rescore(work: Path, model: str, checkpoint: Path, data: Path, symbol: str, n: int) -> dict:
    launched = launch(work, model, checkpoint, data, symbol, n)
    study = launched["study"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    equal = differ = 0
    for trial in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
        params = [f"--param={k}={json.dumps(v)}" for k, v in trial.user_attrs["config"].items()]
        out = run(
            "forecast", "--model", model, "--checkpoint", str(checkpoint), "--symbol", symbol,
            "--data-dir", str(data), "--window", "validation", "--seed",
            str(study.user_attrs["seed"]), "--json", *params, env=env,
        )  # fmt: skip
        forecasts = [row["forecast"] for row in json.loads(out)]
        if forecasts == trial.user_attrs["val_forecasts"]:
            equal += 1
        else:
            differ += 1
    return {
        "model": model,
        "trials": n,
        "complete": equal + differ,  # pruned trials have no forecasts of all 20 windows
        "bit_for_bit_equal": equal,
        "differ": differ,
    }


def latency_rows(work: Path, data: Path, symbol: str) -> list[dict]:
    from objectives.bars import load_bars
    from objectives.evaluator import load_backend
    from objectives.latency import live_latency
    from objectives.windows import WindowSpec, split
    from optimise.checkpoints import init_checkpoint

    bars = load_bars(data, symbol)
    windows = split(len(bars), WindowSpec())
    rows = []
    for preset in ("tiny", "base"):
        checkpoint = init_checkpoint("kronos", preset, 0, work / f"kronos-{preset}", force=True)
        backend = load_backend("kronos", checkpoint=str(checkpoint))
        for count in (32, 192):
            config = {
                "temperature": 0.152, "top_p": 1.0, "top_k": 20, "sample_count": count,
                "max_context": 232, "clip": 1.85,
            }  # fmt: skip
            latency = live_latency(
                backend, bars.head(windows.validation_end), windows.validation, config, 0
            )
            rows.append({"preset": preset, "sample_count": count, **latency.as_dict()})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--symbol", default="BTCUSD")
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--rescore-kronos", type=int, default=40)
    parser.add_argument("--rescore-toto", type=int, default=60)
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--rescore-only", action="store_true", help="part 2 only, printed (no --out)"
    )
    args = parser.parse_args()
    if args.rescore_only and args.out:
        parser.error("--rescore-only prints its rows; it does not write --out")
    data = args.data_dir.resolve()
    result: dict = {"symbol": args.symbol, "threads": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        checkpoints = {}
        for model in ("toto", "kronos"):
            checkpoints[model] = work / f"{model}-tiny"
            run("checkpoint", "init", "--arch", model, "--preset", "tiny", str(checkpoints[model]))
        result["winners"] = []
        for model in () if args.rescore_only else ("toto", "kronos"):
            launched = launch(work, model, checkpoints[model], data, args.symbol, args.trials)
            record = launched["record"]
            selection = record["metadata"]["selection"]
            row = {
                "model": model,
                "trials": args.trials,
                "wall_s": round(launched["wall_s"], 1),
                "winner_trial": record["metadata"]["trial_number"],
                "config": record["config"],
                "first_pass_price_mae": selection["first_pass_price_mae"],
                "best_first_pass_of_study": launched["study"].best_value,
                "confirmed_price_mae": selection["confirmed_price_mae"],
                "confirmed_price_mae_se": selection["confirmed_price_mae_se"],
                "validation_naive_price_mae": record["validation"]["naive_price_mae"],
                "validation_beats_naive": record["validation"]["beats_naive"],
                "test_price_mae": record["test"]["price_mae"],
                "test_naive_price_mae": record["test"]["naive_price_mae"],
                "test_beats_naive": record["test"]["beats_naive"],
                "latency_s": record["validation"]["latency_s"],
                **equal_params_equal_values(launched["study"]),
            }
            result["winners"].append(row)
            print(json.dumps(row), flush=True)
        result["rescore"] = [
            rescore(work, "kronos", checkpoints["kronos"], data, args.symbol, args.rescore_kronos),
            rescore(work, "toto", checkpoints["toto"], data, args.symbol, args.rescore_toto),
        ]
        print(json.dumps(result["rescore"]), flush=True)
        if args.rescore_only:
            return
        result["latency"] = latency_rows(work, data, args.symbol)
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
