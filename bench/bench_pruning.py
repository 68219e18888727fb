"""Kronos pruning, before and after: the same seeded study with ``--prune off`` and with the
median rule every 5 windows, on random weights (base size by default), for several study seeds.

Each run is what ``optimise launch --no-warm-start`` does (open the study, run the trials,
confirm the best 5 on 8 fresh seed sets, score the winner once on the test window, export) in
this process, with its own SQLite file and store. By default every run gets a fresh backend, so
its stage-1 cache starts empty and its wall time is a cold launch's. ``--share-cache`` lets the
runs of one seed share a backend: the first run's wall time is cold, the second one's is not
(it reuses every transformer pass the first one made) and is marked so; its values are the
same either way, since a window's forecast does not depend on the cache.

    python bench/bench_pruning.py --seeds 0 --out docs/bench-pruning.json
    python bench/bench_pruning.py --seeds 1,2 --share-cache --out docs/bench-pruning.json

``--out`` gets one row per run, appended as each finishes; ``--table FILE`` prints the docs
table of such a file.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import optuna

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import objectives.kronos.evaluator as kronos_evaluator  # noqa: E402
from models.kronos import load_kronos  # noqa: E402
from objectives.bars import load_bars  # noqa: E402
from objectives.kronos.evaluator import KronosBackend  # noqa: E402
from objectives.windows import WindowSpec  # noqa: E402
from optimise.setup import PRUNE_CHUNK  # noqa: E402
from storage.database import Database  # noqa: E402
from studies.context import StudyContext  # noqa: E402
from studies.finalise import finalise  # noqa: E402
from studies.open import open_study  # noqa: E402
from studies.worker import WorkerSettings, run_study  # noqa: E402

warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

RUNS = {"before (no pruning)": 0, "after (median rule)": PRUNE_CHUNK}


class PassCounter:
    """Counts stage-1 transformer passes (cache misses by tokens) and the tokens they read."""

    def __init__(self) -> None:
        self.passes = self.tokens = 0
        self._compute = kronos_evaluator.stage1_tokens
        kronos_evaluator.stage1_tokens = self  # the evaluator's only caller of a pass

    def __call__(self, predictor, tokenizer, s1, s2, stamp, max_context):  # noqa: ANN001, ANN204
        self.passes += 1
        self.tokens += min(s1.shape[1], max_context)
        return self._compute(predictor, tokenizer, s1, s2, stamp, max_context)


def run(
    backend: KronosBackend, data: Path, symbol: str, seed: int, chunk: int, trials: int,
    counter: PassCounter, work: Path,
) -> dict:  # fmt: skip
    """One launch of a ``trials``-trial study; its counts, times and exported winner."""
    ctx = StudyContext(backend, load_bars(data, symbol), WindowSpec(), seed=seed, prune_chunk=chunk)
    db = Database.open(f"sqlite:///{work / 'studies.db'}")
    study = open_study(db.optuna, ctx, storage_label=db.label, warm_start=False)
    before = counter.passes, counter.tokens
    started = time.perf_counter()
    run_study(study, ctx, db.ledger, trials, WorkerSettings(progress=False))
    searched = time.perf_counter()
    passes, tokens = counter.passes - before[0], counter.tokens - before[1]
    finalise(study, ctx, db.ledger, work / "store", db.label)
    finalised = time.perf_counter()
    record = json.loads((work / "store" / "kronos" / f"{symbol}.json").read_text())
    states = [t.state for t in study.trials]
    return {
        "trials_s": round(searched - started, 1),
        "finalise_s": round(finalised - searched, 1),
        "complete": states.count(optuna.trial.TrialState.COMPLETE),
        "pruned": states.count(optuna.trial.TrialState.PRUNED),
        "passes": passes,
        "mean_pass_tokens": round(tokens / max(passes, 1), 1),
        "confirmed_price_mae": record["validation"]["price_mae"],
        "confirmed_price_mae_se": record["metadata"]["selection"]["confirmed_price_mae_se"],
        "test_price_mae": record["test"]["price_mae"],
        "winner": {k: v for k, v in record["config"].items() if k != "name"},
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| preset | seed | run | trials wall | complete / pruned | passes (mean tokens) "
        "| confirmed val MAE ± SE | test MAE | winner (max_context, clip, T, top_k/top_p) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    ordered = sorted(
        rows, key=lambda r: (r.get("preset", "base"), r["seed"], not r["run"].startswith("before"))
    )
    for r in ordered:
        w = r["winner"]
        kind = f"top_k {w['top_k']}" if w["top_k"] > 0 else f"top_p {w['top_p']:.3g}"
        wall = f"{r['trials_s']} s" + ("" if r["cold"] else " (warm cache)")
        if r.get("wall_note"):  # added by hand where a wall time is not a clean timing
            wall += f" ({r['wall_note']})"
        lines.append(
            f"| {r.get('preset', 'base')} | {r['seed']} | {r['run']} | {wall} "
            f"| {r['complete']} / {r['pruned']} "
            f"| {r['passes']} ({r['mean_pass_tokens']}) "
            f"| {r['confirmed_price_mae']:.4g} ± {r['confirmed_price_mae_se']:.3g} "
            f"| {r['test_price_mae']:.4g} "
            f"| {w['max_context']}, {w['clip']}, {w['temperature']:.3g}, {kind} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", type=Path, help="print the table of a results file and stop")
    parser.add_argument(
        "--checkpoint", type=Path,
        help="a Kronos folder with model/ and tokenizer/ (default: a random one, made here)",
    )  # fmt: skip
    parser.add_argument("--preset", default="base", help="the random checkpoint's size "
                        "(tiny, base); recorded in each row")  # fmt: skip
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--symbol", default="BTCUSD")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--runs", default="after,before", help="order of the runs per seed")
    parser.add_argument("--share-cache", action="store_true")
    parser.add_argument("--cache-gib", type=float, default=12.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.table:
        print(table(json.loads(args.table.read_text())))
        return
    names = {name.split(" ")[0]: name for name in RUNS}
    order = [names[r] for r in args.runs.split(",")]
    rows = json.loads(args.out.read_text()) if args.out and args.out.exists() else []
    counter = PassCounter()
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = args.checkpoint
        if checkpoint is None:
            checkpoint = Path(tmp) / f"kronos-{args.preset}"
            init = ["checkpoint", "init", "--arch", "kronos", "--preset", args.preset,
                    str(checkpoint)]  # fmt: skip
            subprocess.run([sys.executable, "-m", "optimise", *init], cwd=REPO, check=True)
        loaded = load_kronos(str(checkpoint / "model"), str(checkpoint / "tokenizer"))
        for seed in map(int, args.seeds.split(",")):
            backend = None
            for position, name in enumerate(order):
                if backend is None or not args.share_cache:
                    backend = KronosBackend(loaded, cache_bytes=int(args.cache_gib * 2**30))
                    gc.collect()
                work = Path(tmp) / f"seed{seed}-{position}"
                work.mkdir()
                result = run(backend, args.data_dir, args.symbol, seed, RUNS[name],
                             args.trials, counter, work)  # fmt: skip
                row = {"preset": args.preset, "seed": seed, "run": name, "symbol": args.symbol,
                       "trials": args.trials,
                       "cold": position == 0 or not args.share_cache, **result}  # fmt: skip
                rows.append(row)
                print(json.dumps(row), flush=True)
                if args.out:
                    args.out.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
