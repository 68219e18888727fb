"""What a warm trial costs inside and outside the model, and how many SQL statements it sends.

One worker in-process (``optimise launch``) on SQLite, a tiny random checkpoint, BTCUSD; one
warm-up launch of 1 trial (stage 1 cached), then ``--trials`` more. Each part is timed by
wrapping the function that does it; statements and commits are counted on the engine.

    .venv/bin/python bench/bench_trial_cost.py --model toto --trials 40
    .venv/bin/python bench/bench_trial_cost.py --model toto --trials 40 --task levels
    .venv/bin/python bench/bench_trial_cost.py --model toto --preset base --trials 30
    .venv/bin/python bench/bench_trial_cost.py --model kronos --trials 20 --horizon 1
    .venv/bin/python bench/bench_trial_cost.py --model kronos --trials 20   # 7-step trading
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from sqlalchemy import event

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data"

PARTS = {
    "model": "model (stage 2 + metrics)",
    "suggest": "suggest (TPE + storage)",
    "take": "take (lock, recovery, counts, ask, owner)",
    "tell": "tell",
    "attrs": "user attrs (storage)",
}


def checkpoint(folder: Path, model: str, preset: str) -> Path:
    out = folder / f"{model}-{preset}"
    command = [sys.executable, "-m", "optimise", "checkpoint", "init", "--arch", model]
    subprocess.run([*command, "--preset", preset, str(out)], cwd=REPO, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    return out


def launch_argv(model: str, ckpt: Path, url: str, store: Path, n: int, extra: list[str]):
    return ["launch", "--model", model, "--checkpoint", str(ckpt), "--symbols", "BTCUSD",
            "--data-dir", str(DATA), "--n-trials", str(n), "--storage", url, "--store",
            str(store), "--no-progress", "--no-warm-start", "--cache-dir", "none",
            "--no-default-comparison", *extra]  # fmt: skip


class Meter:
    """Seconds per part and statements/commits on the engine, while ``counting``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.statements: dict[str, int] = defaultdict(int)
        self.commits: dict[str, int] = defaultdict(int)
        self.counting = False
        self.trace = False
        self._parts: list[str] = []

    def wrap(self, part: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            self._parts.append(part)
            try:
                return function(*args, **kwargs)
            finally:
                self._parts.pop()
                if self.counting and part not in self._parts:  # outermost call of a part
                    self.seconds[part] += time.perf_counter() - started

        return timed

    @property
    def part(self) -> str:
        """The innermost part running now (``other``: outside every timed part)."""
        return self._parts[-1] if self._parts else "other"

    def listen(self, engine: Any) -> None:
        def on_statement(_c: Any, _k: Any, statement: str, *_: Any) -> None:
            if self.counting:
                self.statements[self.part] += 1
                if self.trace:
                    print(f"SQL [{self.part}] {' '.join(statement.split())[:150]}")

        def on_commit(*_: Any) -> None:
            if self.counting:
                self.commits[self.part] += 1

        event.listen(engine, "before_cursor_execute", on_statement)
        event.listen(engine, "commit", on_commit)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    import objectives.evaluator as evaluator_module
    import storage.database as database_module
    import studies.objective as objective_module
    import studies.worker as worker
    from optimise.cli import main

    meter = Meter()
    meter.trace = args.trace
    opened = database_module.Database.open.__func__

    def open_and_listen(cls: type, *a: Any, **k: Any) -> Any:
        database = opened(cls, *a, **k)
        meter.listen(database.engine)
        return database

    database_module.Database.open = classmethod(open_and_listen)
    worker._take_trial = meter.wrap(PARTS["take"], worker._take_trial)
    worker._tell = meter.wrap(PARTS["tell"], worker._tell)
    objective_module.evaluate = meter.wrap(PARTS["model"], evaluator_module.evaluate)
    optuna.Trial._suggest = meter.wrap(PARTS["suggest"], optuna.Trial._suggest)
    optuna.Trial.set_user_attr = meter.wrap(PARTS["attrs"], optuna.Trial.set_user_attr)
    if hasattr(objective_module, "set_user_attrs"):  # one transaction per trial
        objective_module.set_user_attrs = meter.wrap(
            PARTS["attrs"], objective_module.set_user_attrs
        )
    run_trial = worker._run_trial
    worker._run_trial = meter.wrap("whole trial (objective + tell)", run_trial)
    phases = Meter()  # where the measured launch goes, in seconds
    _wrap_phases(phases)

    work = Path(tempfile.mkdtemp(prefix="bench-trial-cost-"))
    ckpt = checkpoint(work, args.model, args.preset)
    url = f"sqlite:///{work / 'studies.db'}"
    extra = ["--task", args.task] + (
        [] if args.horizon is None else ["--horizon", str(args.horizon)]
    )
    assert main(launch_argv(args.model, ckpt, url, work / "store", 1, extra)) == 0
    meter.counting = phases.counting = True
    started = time.perf_counter()
    status = main(launch_argv(args.model, ckpt, url, work / "store", 1 + args.trials, extra))
    wall = time.perf_counter() - started
    meter.counting = phases.counting = False
    assert status == 0
    ms = {part: 1000 * s / args.trials for part, s in meter.seconds.items()}
    trial_ms = ms.get("whole trial (objective + tell)", 0.0) + ms.get(PARTS["take"], 0.0)
    model_ms = ms.get(PARTS["model"], 0.0)
    return {
        "model": args.model,
        "preset": args.preset,
        "task": args.task,
        "horizon": args.horizon,
        "trials": args.trials,
        "ms_per_trial": {k: round(v, 2) for k, v in sorted(ms.items())},
        "trial_ms": round(trial_ms, 2),
        "outside_model_ms": round(trial_ms - model_ms, 2),
        "outside_over_model": round((trial_ms - model_ms) / model_ms, 2) if model_ms else None,
        "statements_per_trial": {
            k: round(v / args.trials, 1) for k, v in sorted(meter.statements.items())
        },
        "commits_per_trial": {
            k: round(v / args.trials, 1) for k, v in sorted(meter.commits.items())
        },
        "launch_wall_s (trials + finalisation)": round(wall, 2),
        "launch_phases_s": {k: round(v, 2) for k, v in sorted(phases.seconds.items())},
    }


def _wrap_phases(phases: Meter) -> None:
    """Time the parts of a launch: the trials, and finalisation's confirmation, first pass
    again, test scoring, the trading defaults' scoring, latency and picture."""
    import optimise.commands as commands
    import studies.finalise as finalise

    commands.run_study = phases.wrap("trials (run_study)", commands.run_study)
    commands.finalise = phases.wrap("finalisation (all)", commands.finalise)
    finalise.confirm = phases.wrap("confirmation", finalise.confirm)
    finalise.evaluate = phases.wrap("winner's first pass again + test scoring", finalise.evaluate)
    finalise._score_default = phases.wrap("trading defaults' scoring", finalise._score_default)
    finalise.live_latency = phases.wrap("latency", finalise.live_latency)
    finalise.forecast_data = phases.wrap("picture data (quantiles)", finalise.forecast_data)
    finalise.render = phases.wrap("picture (render)", finalise.render)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", choices=["toto", "kronos"], default="toto")
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--task", default="trading")
    parser.add_argument("--horizon", type=int)
    parser.add_argument("--trace", action="store_true", help="print every SQL statement")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the measured launch")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        result = profiler.runcall(measure, args)
        profiler.dump_stats(args.profile)
    else:
        result = measure(args)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
