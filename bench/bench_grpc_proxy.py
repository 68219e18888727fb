"""Does Optuna's gRPC storage proxy lift the database bottleneck? Plain ask/suggest/tell.

N worker processes run the same warm Toto objective (tiny random checkpoint, BTCUSD, 20
validation windows; stage 1 computed once per worker before timing) against one study, either
straight on PostgreSQL (``RDBStorage``) or through one ``run_grpc_proxy_server`` in front of
it (``GrpcStorageProxy``). This isolates Optuna's storage path: no budget lock, heartbeat or
ledger (our worker needs the database directly for those).

    .venv/bin/pip install grpcio protobuf
    .venv/bin/python bench/bench_grpc_proxy.py --trials 150 --out docs/bench-grpc-proxy.md
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import tempfile
import time
import uuid
from pathlib import Path

import optuna

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO / "bench"))
from bench_throughput import drop_database, postgres_database, tiny_checkpoint  # noqa: E402


def worker(kind: str, url: str, port: int, checkpoint: str, n: int, ready, go, out) -> None:
    from objectives.bars import load_bars
    from objectives.evaluator import evaluate, load_backend
    from objectives.windows import WindowSpec, split

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    bars = load_bars(DATA, "BTCUSD")
    windows = split(len(bars), WindowSpec())
    backend = load_backend("toto", checkpoint=checkpoint)
    evaluator = backend.evaluator(bars.head(windows.validation_end))
    evaluator.forecast_close(windows.validation, {"num_samples": 64, "aggregate": "mean"}, 0)
    if kind == "grpc":
        storage = optuna.storages.GrpcStorageProxy(host="127.0.0.1", port=port)
    else:
        storage = optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
    study = optuna.load_study(
        study_name="bench", storage=storage, sampler=optuna.samplers.TPESampler(constant_liar=True)
    )
    ready.release()
    go.wait()
    done = 0
    started = time.perf_counter()
    while done < n:
        trial = study.ask()
        config = backend.space.suggest(trial)
        metrics = evaluate(evaluator, bars, windows.validation, config, 0).metrics  # study seed
        for key, value in metrics.as_dict().items():
            trial.set_user_attr(key, value)
        study.tell(trial, metrics.price_mae)
        done += 1
    out.put((done, time.perf_counter() - started))


def serve(url: str, port: int) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.storages.run_grpc_proxy_server(
        optuna.storages.RDBStorage(url), host="127.0.0.1", port=port
    )


def run(kind: str, workers: int, trials: int, checkpoint: str) -> float:
    name, url = postgres_database()
    optuna.create_study(study_name="bench", storage=url)
    port = 13000 + int(uuid.uuid4().int % 1000)
    server = None
    try:
        if kind == "grpc":
            server = mp.Process(target=serve, args=(url, port), daemon=True)
            server.start()
            time.sleep(2)
        ready, go, out = mp.Semaphore(0), mp.Event(), mp.Queue()
        per_worker = trials // workers
        procs = [
            mp.Process(
                target=worker, args=(kind, url, port, checkpoint, per_worker, ready, go, out)
            )
            for _ in range(workers)
        ]
        for p in procs:
            p.start()
        for _ in procs:
            ready.acquire()
        started = time.perf_counter()
        go.set()
        total = sum(out.get()[0] for _ in procs)
        elapsed = time.perf_counter() - started
        for p in procs:
            p.join()
        return total / elapsed
    finally:
        if server is not None:
            server.terminate()
        drop_database(name)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=150)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    checkpoint = tiny_checkpoint(Path(tempfile.mkdtemp()))
    rows = []
    for workers in (1, 2, 4):
        for kind in ("postgresql", "grpc"):
            rate = run(kind, workers, args.trials, str(checkpoint))
            rows.append((kind, workers, rate))
            print(f"{kind:10s} workers={workers} {rate:6.1f} trials/s", flush=True)
    lines = [
        "# Optuna's gRPC storage proxy in front of PostgreSQL",
        "",
        f"Command: `.venv/bin/python bench/bench_grpc_proxy.py --trials {args.trials}` "
        "(needs `pip install grpcio protobuf`). 2 CPU cores; plain Optuna ask/suggest/tell "
        "with 5 user attrs per trial and the warm Toto tiny objective.",
        "",
        "| storage path | workers | trials/s |",
        "| --- | ---: | ---: |",
        *[f"| {kind} | {workers} | {rate:.1f} |" for kind, workers, rate in rows],
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
