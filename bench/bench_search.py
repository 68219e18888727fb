"""TPE against the trading code's hand-made grid, per symbol, model and checkpoint size.

For each symbol: every grid setting of ``trading-grids.json`` is scored on the validation
window with the study's seed set (the draws every TPE trial sees), its 5 best are confirmed on
8 fresh seed sets, and the confirmed winner is scored once on the test window; then a
``--trials`` TPE study runs through ``optimise launch`` (which confirms and test-scores its own
winner). Reported: both confirmed validation MAEs, both test MAEs, the first TPE trial whose
first pass beat the grid's best first pass, and wall times.

    python bench/bench_search.py --presets base,tiny --out docs/bench-search.json

Checkpoints are random-weight ``tiny`` and ``base`` (the published shapes) made by
``optimise checkpoint init``; rows are written to ``--out`` as each one finishes, replacing
that file's row of the same (preset, model, symbol), so one row can be re-run with
``--presets base --models kronos --symbols MSFT``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
SYMBOLS = [("BTCUSD", SHARED), ("ETHUSD", SHARED), ("AAPL", REPO / "trainingdata"),
           ("MSFT", REPO / "trainingdata")]  # fmt: skip


def grid_configs(model: str, grids: dict) -> list[dict]:
    keys = {
        "toto": ("num_samples", "aggregate"),
        "kronos": ("temperature", "top_p", "top_k", "sample_count", "max_context", "clip"),
    }
    return [{k: row[k] for k in keys[model]} for row in grids[model]]  # fmt: skip


def grid_result(model: str, checkpoint: Path, data: Path, symbol: str, grids: dict) -> dict:
    from objectives.bars import load_bars
    from objectives.evaluator import evaluate, load_backend
    from objectives.windows import WindowSpec
    from studies.confirm import confirmation_seeds
    from studies.context import StudyContext

    started = time.perf_counter()
    ctx = StudyContext(load_backend(model, checkpoint=str(checkpoint)), load_bars(data, symbol),
                       WindowSpec())  # fmt: skip
    targets = ctx.windows.validation
    first = []
    for config in map(ctx.backend.space.from_config, grid_configs(model, grids)):
        scored = evaluate(ctx.search_evaluator, ctx.bars, targets, config, ctx.seed)
        first.append((scored.metrics.price_mae, config))
    first.sort(key=lambda pair: pair[0])
    confirmed = []
    for value, config in first[:5]:
        draws = [
            evaluate(ctx.search_evaluator, ctx.bars, targets, config, seed).metrics.price_mae
            for seed in confirmation_seeds(ctx.seed, 8)
        ]
        confirmed.append((float(np.mean(draws)), float(np.std(draws, ddof=1) / np.sqrt(8)),
                          value, config))  # fmt: skip
    mean, se, value, config = min(confirmed, key=lambda c: c[0])
    test = evaluate(ctx.test_evaluator, ctx.bars, ctx.windows.test, config, ctx.seed).metrics
    return {
        "settings": len(first),
        "best_first_pass": first[0][0],
        "winner": config.to_config(),
        "confirmed_price_mae": mean,
        "confirmed_price_mae_se": se,
        "test_price_mae": test.price_mae,
        "naive_val": test.naive_price_mae
        and float(np.mean(np.abs(ctx.bars.close[targets - 1] - ctx.bars.close[targets]))),
        "naive_test": test.naive_price_mae,
        "wall_s": round(time.perf_counter() - started, 1),
    }


def tpe_result(work: Path, model: str, checkpoint: Path, data: Path, symbol: str, n: int) -> dict:
    storage = f"sqlite:///{work / f'{model}-{symbol}.db'}"
    store = work / "store"
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "optimise", "launch", "--model", model, "--checkpoint",
         str(checkpoint), "--symbols", symbol, "--data-dir", str(data), "--n-trials", str(n),
         "--storage", storage, "--store", str(store), "--no-progress", "--no-warm-start"],
        cwd=REPO, check=True, capture_output=True,
    )  # fmt: skip
    wall = time.perf_counter() - started
    record = json.loads((store / model / f"{symbol}.json").read_text())
    study = optuna.load_study(study_name=record["metadata"]["study_name"], storage=storage)
    trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    return {
        "trials": n,
        "winner": {k: v for k, v in record["config"].items() if k != "name"},
        "confirmed_price_mae": record["validation"]["price_mae"],
        "confirmed_price_mae_se": record["metadata"]["selection"]["confirmed_price_mae_se"],
        "test_price_mae": record["test"]["price_mae"],
        "first_pass_values": {t.number: t.value for t in trials},
        "wall_s": round(wall, 1),
    }


def init_checkpoint(work: Path, model: str, preset: str) -> Path:
    """Make a random ``preset`` checkpoint of ``model``; its folder."""
    folder = work / f"{model}-{preset}"
    init = ["checkpoint", "init", "--arch", model, "--preset", preset, str(folder)]
    subprocess.run([sys.executable, "-m", "optimise", *init], cwd=REPO, check=True)
    return folder


def table(rows: list[dict]) -> str:
    """The results as the markdown table of docs/bench-search.md."""

    def mae(value: float, se: float | None = None) -> str:
        return f"{value:.4g}" + ("" if se is None else f" ± {se:.2g}")

    lines = [
        "| preset | model | symbol | grid: confirmed val ± SE | grid test | TPE: confirmed val "
        "± SE | TPE test | naive val / test | first TPE trial beating the grid's best "
        "| wall grid / TPE |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        g, t = r["grid"], r["tpe"]
        lines.append(
            f"| {r.get('preset', 'tiny')} | {r['model']} | {r['symbol']} "
            f"| {mae(g['confirmed_price_mae'], g['confirmed_price_mae_se'])} "
            f"| {mae(g['test_price_mae'])} "
            f"| {mae(t['confirmed_price_mae'], t['confirmed_price_mae_se'])} "
            f"| {mae(t['test_price_mae'])} | {mae(g['naive_val'])} / {mae(g['naive_test'])} "
            f"| {r['first_trial_beating_grid']} | {g['wall_s']} s / {t['wall_s']} s |"
        )
    return "\n".join(lines)


def order(row: dict) -> tuple:
    """Rows as in the docs: base before tiny, Toto before Kronos, symbols as listed."""
    symbols = [name for name, _ in SYMBOLS]
    return (row.get("preset", "tiny") != "base", row["model"] != "toto",
            symbols.index(row["symbol"]) if row["symbol"] in symbols else len(symbols))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", type=Path, help="print the table of a results file and stop")
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--presets", default="tiny", help="comma-separated: tiny, base")
    parser.add_argument("--models", default="toto,kronos")
    parser.add_argument("--symbols", default=",".join(name for name, _ in SYMBOLS))
    parser.add_argument("--out", type=Path, help="results file; rows of other runs are kept")
    args = parser.parse_args()
    if args.table:
        print(table(json.loads(args.table.read_text())))
        return
    grids = json.loads((SHARED / "trading-grids.json").read_text())
    wanted = args.symbols.split(",")
    rows = json.loads(args.out.read_text()) if args.out and args.out.exists() else []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for preset in args.presets.split(","):
            for model in args.models.split(","):
                checkpoint = init_checkpoint(work, model, preset)
                for symbol, data in [(s, d) for s, d in SYMBOLS if s in wanted]:
                    grid = grid_result(model, checkpoint, data, symbol, grids)
                    tpe = tpe_result(work, model, checkpoint, data, symbol, args.trials)
                    values = tpe.pop("first_pass_values")
                    beat = [n for n, v in sorted(values.items()) if v < grid["best_first_pass"]]
                    row = {
                        "preset": preset,
                        "model": model,
                        "symbol": symbol,
                        "grid": grid,
                        "tpe": tpe,
                        "first_trial_beating_grid": beat[0] if beat else None,
                        "tpe_better_on_validation": (
                            tpe["confirmed_price_mae"] < grid["confirmed_price_mae"]
                        ),
                        "tpe_better_on_test": tpe["test_price_mae"] < grid["test_price_mae"],
                    }
                    same = (preset, model, symbol)
                    rows = [r for r in rows if (r.get("preset"), r["model"], r["symbol"]) != same]
                    rows.append(row)
                    rows.sort(key=order)
                    print(json.dumps(row), flush=True)
                    if args.out:
                        args.out.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
