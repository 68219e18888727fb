"""Winners under ``--task levels`` and ``--task trading``, each scored under the other task.

For each (preset, model, symbol): one study per task (``optimise launch``, random-weight
checkpoints of the preset), then each task's confirmed winner is re-scored on the other
task's validation window with the study seed, by the other task's objective. A row says how
far a winner tuned for one forecast is from the best of the other.

    .venv/bin/python bench/bench_tasks.py --data ../shared/data --symbols BTCUSD,ETHUSD \\
        --symbols-bundled AAPL --presets tiny --n-trials 40 --out docs/bench-tasks.json
    .venv/bin/python bench/bench_tasks.py --table docs/bench-tasks.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from objectives.bars import load_bars  # noqa: E402
from objectives.evaluator import evaluate, load_backend  # noqa: E402
from objectives.tasks import TASKS, Task, resolve_horizon  # noqa: E402
from objectives.windows import WindowSpec  # noqa: E402
from storage.record import Record  # noqa: E402
from studies.context import StudyContext  # noqa: E402

OPTIMISE = [str(Path(sys.executable).parent / "optimise")]


def run(*args: object, threads: int | None = None) -> float:
    """``optimise ARGS`` in a subprocess (torch on ``threads`` threads); its wall seconds."""
    env = dict(os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {}))
    start = time.perf_counter()
    subprocess.run([*OPTIMISE, *map(str, args)], check=True, cwd=ROOT, capture_output=True,
                   env=env)  # fmt: skip
    return time.perf_counter() - start


def task_of(name: str) -> Task:
    return Task(name, TASKS[name].columns)


def rescore(backend, data: Path, symbol: str, record: Record, task_name: str, seed: int,
            windows: WindowSpec) -> float:  # fmt: skip
    """``record``'s config scored on ``task_name``'s validation window by its objective."""
    task = task_of(task_name)
    spec = WindowSpec(val_window=windows.val_window, test_window=windows.test_window,
                      horizon=resolve_horizon(task, record.model, None))  # fmt: skip
    ctx = StudyContext(backend, load_bars(data, symbol), spec, TASKS[task_name].metric, seed,
                       task=task)  # fmt: skip
    settings = backend.space.from_config(record.settings)
    scored = evaluate(ctx.search_evaluator, ctx.bars, ctx.windows.validation, settings, seed)
    return scored.metrics.value(ctx.metric)


def _finalisation(args: argparse.Namespace) -> list[object]:
    """The launch's finalisation options: reduced confirmation for slow rows (base 7-step Kronos
    on a CPU), the defaults otherwise."""
    extra: list[object] = []
    if args.confirm_candidates is not None:
        extra += ["--confirm-candidates", args.confirm_candidates]
    if args.confirm_draws is not None:
        extra += ["--confirm-draws", args.confirm_draws]
    if args.no_default_comparison:
        extra.append("--no-default-comparison")
    return extra


def _key(row: dict[str, object]) -> tuple[object, ...]:
    return row["preset"], row["model"], row["symbol"], row["tuned_for"]


def bench(args: argparse.Namespace) -> list[dict[str, object]]:
    """Run the studies; rows are merged into ``args.out`` (a row replaces one of its key)."""
    done = Path(args.out)
    out: list[dict[str, object]] = json.loads(done.read_text()) if done.exists() else []
    work = Path(tempfile.mkdtemp(prefix="bench-tasks-"))
    data = work / "data"
    data.mkdir()
    for symbol in filter(None, args.symbols.split(",")):
        (data / f"{symbol}.csv").symlink_to(Path(args.data).resolve() / f"{symbol}.csv")
    for symbol in filter(None, args.symbols_bundled.split(",")):
        (data / f"{symbol}.csv").symlink_to(ROOT / "trainingdata" / f"{symbol}.csv")
    windows = WindowSpec(val_window=args.val_window, test_window=args.test_window)
    symbols = [s for s in (args.symbols + "," + args.symbols_bundled).split(",") if s]
    for preset in args.presets.split(","):
        for model in args.models.split(","):
            folder = work / f"{model}-{preset}"
            run("checkpoint", "init", "--arch", model, "--preset", preset, "--force", folder)
            backend = load_backend(model, checkpoint=str(folder), device=args.device)
            for symbol in symbols:
                records, seconds = {}, {}
                for task in ("levels", "trading"):
                    store = work / f"store-{preset}-{task}"
                    seconds[task] = run(
                        "launch", "--model", model, "--checkpoint", folder, "--symbols", symbol,
                        "--data-dir", data, "--n-trials", args.n_trials, "--no-progress",
                        "--task", task, "--storage", f"sqlite:///{work}/{preset}.db",
                        "--store", store, "--seed", args.seed, "--device", args.device,
                        "--val-window", args.val_window, "--test-window", args.test_window,
                        *_finalisation(args), threads=args.threads)  # fmt: skip
                    path = store / model / f"{symbol}.json"
                    records[task] = Record.from_json(path.read_bytes(), str(path))
                for task, other in (("levels", "trading"), ("trading", "levels")):
                    record = records[task]
                    row = {
                        "preset": preset, "model": model, "symbol": symbol, "tuned_for": task,
                        "config": record.settings, "trial": record.metadata.trial_number,
                        "objective": record.objective,
                        "confirmed": record.validation.metric(record.objective),
                        "scored_under": other,
                        "other_objective": TASKS[other].metric,
                        "value_under_other": rescore(backend, data, symbol, record, other,
                                                     args.seed, windows),
                        "other_winner_first_pass": rescore(backend, data, symbol,
                                                           records[other], other, args.seed,
                                                           windows),
                        "n_trials": args.n_trials, "val_window": args.val_window,
                        "test_window": args.test_window, "study_s": round(seconds[task], 1),
                        "threads": args.threads,
                        "confirm_candidates": args.confirm_candidates,
                        "confirm_draws": args.confirm_draws,
                        "default_comparison": not args.no_default_comparison,
                    }  # fmt: skip
                    out = [r for r in out if _key(r) != _key(row)] + [row]
                    print(json.dumps(row), flush=True)
                    Path(args.out).write_text(json.dumps(out, indent=1))
    return out


def _windows(row: dict[str, object]) -> str:
    """`` (v5/t5, 8 trials)`` for rows made with other windows than the default 20/20."""
    if row.get("val_window", 20) == 20 and row.get("test_window", 20) == 20:
        return ""
    confirm = ""
    if row.get("confirm_candidates") or row.get("confirm_draws"):
        confirm = f", confirm {row['confirm_candidates']}x{row['confirm_draws']}"
    return f" (v{row['val_window']}/t{row['test_window']}, {row['n_trials']} trials{confirm})"


def table(rows: list[dict[str, object]]) -> str:
    lines = [
        "| preset | model | symbol | tuned for | winner config | confirmed own objective "
        "| scored under the other task | the other task's winner there | study wall time |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        config = ", ".join(
            f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
            for k, v in r["config"].items()  # type: ignore[union-attr]
        )
        lines.append(
            f"| {r['preset']}{_windows(r)} | {r['model']} | {r['symbol']} | {r['tuned_for']} "
            f"| {config} "
            f"| {r['objective']} {r['confirmed']:.6g} "
            f"| {r['scored_under']} {r['other_objective']} {r['value_under_other']:.6g} "
            f"| {r['other_winner_first_pass']:.6g} "
            f"| {str(r['study_s']) + ' s' if 'study_s' in r else 'not recorded'} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--symbols", default="BTCUSD,ETHUSD")
    parser.add_argument("--symbols-bundled", default="AAPL")
    parser.add_argument("--presets", default="tiny")
    parser.add_argument("--models", default="toto,kronos")
    parser.add_argument("--threads", type=int, help="torch threads of each launch")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda on a GPU host")
    parser.add_argument("--n-trials", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--val-window", type=int, default=20, help="validation bars per study")
    parser.add_argument("--test-window", type=int, default=20, help="test bars per study")
    parser.add_argument("--confirm-candidates", type=int, help="launch's; default its own")
    parser.add_argument("--confirm-draws", type=int, help="launch's; default its own")
    parser.add_argument("--no-default-comparison", action="store_true", help="launch's")
    parser.add_argument("--out", default="docs/bench-tasks.json")
    parser.add_argument("--table", help="print the docs table of a results file")
    args = parser.parse_args()
    if args.table:
        print(table(json.loads(Path(args.table).read_text())))
        return
    bench(args)


if __name__ == "__main__":
    main()
