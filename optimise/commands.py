"""The ``optimise`` sub-commands. Each returns the process exit code."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from objectives.exceptions import DataError
from optimise.setup import contexts
from optimise.tables import print_table
from storage.exceptions import StorageError
from storage.ledger import Ledger
from storage.rdb import open_storage
from storage.urls import is_sqlite, redact, sqlite_path, storage_url
from studies.finalise import Finalised, finalise
from studies.open import open_study
from studies.worker import WorkerSettings, run_study


def launch(args: argparse.Namespace) -> int:
    """Run or resume each study to ``--n-trials``, then finalise and export it."""
    if args.n_trials < 1:
        raise DataError("--n-trials must be at least 1")
    ctxs = contexts(args)
    url = storage_url(args.storage)
    if is_sqlite(url):
        print(
            "note: SQLite suits workers on this machine only; for several hosts use "
            "--storage postgresql+psycopg://USER@HOST/DB",
            file=sys.stderr,
        )
    storage = open_storage(url, heartbeat_interval=args.heartbeat, grace_period=args.grace)
    ledger = Ledger(url)
    settings = WorkerSettings(
        heartbeat_interval_s=args.heartbeat,
        grace_period_s=args.grace,
        progress=not args.no_progress and sys.stderr.isatty(),
    )
    rows = []
    for ctx in ctxs:
        study = open_study(storage, ctx)
        outcome = run_study(study, ctx, ledger, args.n_trials, settings, args.timeout)
        done: Finalised | None = None
        if outcome.reached:
            done = finalise(study, ctx, ledger, Path(args.store), url)
        rows.append(_summary_row(ctx.name, f"{outcome.finished}/{outcome.target}", done))
    print_table(["study", "trials", "val MAE", "naive val", "skill", "test MAE", "export"], rows)
    unfinished = [r[0] for r in rows if r[-1] == "-"]
    if unfinished:
        print(f"not finished (resume with the same command): {', '.join(unfinished)}")
    print(f"dashboard: optimise dashboard --storage '{redact(url)}'  (http://127.0.0.1:8080)")
    return 0


def export(args: argparse.Namespace) -> int:
    """Finalise each study's current best trial if needed and write the store."""
    ctxs = contexts(args)
    url = storage_url(args.storage)
    _require_existing(url)
    storage = open_storage(url)
    ledger = Ledger(url)
    rows = []
    for ctx in ctxs:
        study = open_study(storage, ctx, create=False)
        done = finalise(study, ctx, ledger, Path(args.store), url)
        rows.append(_summary_row(ctx.name, "-", done))
    print_table(["study", "trials", "val MAE", "naive val", "skill", "test MAE", "export"], rows)
    return 0


def status(args: argparse.Namespace) -> int:
    from optimise.status import study_rows

    url = storage_url(args.storage)
    _require_existing(url)
    rows = study_rows(url)
    if not rows:
        print(f"no studies in {redact(url)}")
        return 0
    print_table(
        [
            "study",
            "complete",
            "running",
            "waiting",
            "fail",
            "best val MAE",
            "naive val",
            "test MAE",
            "export",
        ],
        rows,
    )
    return 0


def forecast(args: argparse.Namespace) -> int:
    from optimise.forecast import run_forecast

    return run_forecast(args)


def dashboard(args: argparse.Namespace) -> int:
    """Serve optuna-dashboard for the same storage (127.0.0.1 unless told otherwise)."""
    from optuna_dashboard import run_server

    url = storage_url(args.storage)
    _require_existing(url)
    storage = open_storage(url)
    print(f"optuna-dashboard for {redact(url)} on http://{args.host}:{args.port}/dashboard")
    print("Ctrl-C to stop", flush=True)
    run_server(storage, host=args.host, port=args.port)
    return 0


def checkpoint_init(args: argparse.Namespace) -> int:
    from optimise.checkpoints import init_checkpoint

    path = init_checkpoint(args.arch, args.preset, args.seed, Path(args.out), force=args.force)
    print(f"wrote a random {args.arch} {args.preset} checkpoint to {path}")
    return 0


def _require_existing(url: str) -> None:
    path = sqlite_path(url)
    if path is not None and not path.exists():
        raise StorageError(f"no study database at {path}; run `optimise launch` first")


def _summary_row(name: str, trials: str, done: Finalised | None) -> list[str]:
    if done is None:
        return [name, trials, "-", "-", "-", "-", "-"]
    record = done.record
    meta = record["metadata"]
    return [
        name,
        trials,
        f"{record['validation']['price_mae']:.6g}",
        f"{meta['validation_naive_price_mae']:.6g}",
        f"{meta['validation_skill']:+.3f}",
        f"{record['test']['price_mae']:.6g}",
        str(done.path),
    ]
