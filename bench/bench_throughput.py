"""Trials per second on one study with 1, 2 and 4 workers, on SQLite and PostgreSQL.

Each worker is a real ``optimise launch`` process running the Toto backend on a tiny random
checkpoint (stage 1 warm after a worker's first trial). Throughput counts the trials finished
after every worker had warmed up, over that span, from the trials' own timestamps. A second
part runs one worker in-process and splits a trial's time into sampler, storage and model.

    .venv/bin/python bench/bench_throughput.py --trials 120 --out docs/bench-throughput.md
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path

import optuna
import psycopg

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
NAME = "toto:BTCUSD:v20-t20-h1"


def launch_args(url: str, checkpoint: Path, store: Path, n_trials: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "optimise",
        "launch",
        "--model",
        "toto",
        "--checkpoint",
        str(checkpoint),
        "--symbols",
        "BTCUSD",
        "--data-dir",
        str(DATA),
        "--n-trials",
        str(n_trials),
        "--storage",
        url,
        "--store",
        str(store),
        "--no-progress",
    ]


def throughput(url: str, checkpoint: Path, store: Path, workers: int, n_trials: int) -> float:
    procs = [
        subprocess.Popen(
            launch_args(url, checkpoint, store, n_trials),
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(workers)
    ]
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"worker failed: {err}")
    trials = optuna.load_study(study_name=NAME, storage=url).get_trials(
        states=(optuna.trial.TrialState.COMPLETE,)
    )
    first_done: dict[str, object] = {}
    for trial in sorted(trials, key=lambda t: t.datetime_complete):
        first_done.setdefault(trial.user_attrs["worker"], trial.datetime_complete)
    warm_from = max(first_done.values())
    warm = [t for t in trials if t.datetime_start >= warm_from]
    span = (max(t.datetime_complete for t in warm) - warm_from).total_seconds()
    return len(warm) / span


def tiny_checkpoint(folder: Path) -> Path:
    """A random Toto tiny checkpoint in ``folder`` (via the command line)."""
    checkpoint = folder / "toto-tiny"
    command = [sys.executable, "-m", "optimise", "checkpoint", "init", "--arch", "toto"]
    subprocess.run(
        [*command, "--preset", "tiny", str(checkpoint)],
        cwd=REPO,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return checkpoint


def postgres_database() -> tuple[str, str]:
    name = f"optimise_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return name, f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def drop_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def breakdown(url: str, checkpoint: Path, store: Path, n_trials: int) -> dict[str, float]:
    """Milliseconds per warm trial by part, one worker in-process."""
    import objectives.evaluator as evaluator_module
    import studies.objective as objective_module
    import studies.worker as worker
    from optimise.cli import main

    spent: dict[str, float] = defaultdict(float)

    def timed(part: str, function):
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[part] += time.perf_counter() - started

        return wrapper

    # take trial includes its one owner attr write; user attrs counts the other six
    worker._take_trial = timed("take trial (lock, recovery, counts, ask)", worker._take_trial)
    worker._tell = timed("tell", worker._tell)
    objective_module.evaluate = timed(
        "model (stage 2 forecast + metrics)", evaluator_module.evaluate
    )
    optuna.Trial._suggest = timed("suggest (TPE + storage)", optuna.Trial._suggest)
    optuna.Trial.set_user_attr = timed("user attrs (storage)", optuna.Trial.set_user_attr)
    # one warm-up trial, then measure
    main(launch_args(url, checkpoint, store, 1)[3:])
    spent.clear()
    started = time.perf_counter()
    main(launch_args(url, checkpoint, store, n_trials + 1)[3:])
    total = time.perf_counter() - started
    result = {part: 1000 * seconds / n_trials for part, seconds in spent.items()}
    result["whole launch incl. model load and finalisation"] = 1000 * total / n_trials
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=120)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-throughput-"))
    checkpoint = tiny_checkpoint(work)
    rows = []
    for backend in ("sqlite", "postgresql"):
        for workers in args.workers:
            if backend == "sqlite":
                database, url = None, f"sqlite:///{work / f'sqlite-{workers}.db'}"
            else:
                database, url = postgres_database()
            try:
                rate = throughput(url, checkpoint, work / "store", workers, args.trials)
            finally:
                if database:
                    drop_database(database)
            rows.append((backend, workers, rate))
            print(f"{backend:10s} workers={workers}  {rate:6.1f} trials/s", flush=True)
    parts = {}
    for backend in ("sqlite", "postgresql"):
        if backend == "sqlite":
            database, url = None, f"sqlite:///{work / 'breakdown.db'}"
        else:
            database, url = postgres_database()
        try:
            parts[backend] = breakdown(url, checkpoint, work / "store", args.trials)
        finally:
            if database:
                drop_database(database)
    lines = [
        "# Throughput: trials per second on one study",
        "",
        f"Command: `.venv/bin/python bench/bench_throughput.py --trials {args.trials}`",
        f"Machine: {os.cpu_count()} CPU cores; Toto tiny random checkpoint, BTCUSD, 20 "
        "validation windows, stage 1 warm (trials after every worker's first one).",
        "",
        "| storage | workers | trials/s | vs 1 worker |",
        "| --- | ---: | ---: | ---: |",
    ]
    for backend, workers, rate in rows:
        base = next(r for b, w, r in rows if b == backend and w == args.workers[0])
        lines.append(f"| {backend} | {workers} | {rate:.1f} | {rate / base:.2f}x |")
    lines += ["", "## Where a warm trial's time goes (one worker, ms per trial)", ""]
    names = sorted({name for p in parts.values() for name in p})
    lines += ["| part | sqlite | postgresql |", "| --- | ---: | ---: |"]
    for name in names:
        sqlite_ms, postgres_ms = parts["sqlite"].get(name, 0), parts["postgresql"].get(name, 0)
        lines.append(f"| {name} | {sqlite_ms:.1f} | {postgres_ms:.1f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    main()
