"""The ``optimise`` sub-commands. Each returns the process exit code."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import URL

from errors import EXIT_USAGE
from objectives.exceptions import DataError
from objectives.registry import flat_selection_models
from objectives.tasks import LEVELS, Task
from objectives.units import with_unit
from optimise import summary as winners
from optimise.setup import contexts, warn_if_not_upper_case, window_spec
from optimise.sources import (
    DEFAULT_DATA_DIR,
    fill_from,
    model_sources,
    study_sources,
    take_study_sources,
)
from optimise.sweep import Steps, load_each, run_sweep
from storage.database import Database
from storage.exceptions import StorageError
from storage.history import keep_previous_record
from storage.listing import all_studies
from storage.record import Scores
from storage.store import Publish, check_writable, record_path
from storage.urls import STORAGE_ENV, is_sqlite, resolve, sqlite_path
from studies.attrs import StudyAttrs
from studies.context import StudyContext
from studies.exceptions import StudyError
from studies.finalise import Finalised, FinaliseSettings, finalise
from studies.open import open_study, seed_warning, storage_arg
from studies.refresh import Refresh, latest_periods, resolve_period, split_name
from studies.resilient import Retry
from studies.worker import RunOutcome, WorkerSettings, run_study

if TYPE_CHECKING:
    import optuna


def _check_launch_flags(args: argparse.Namespace) -> None:
    """Flag ranges, checked before anything is loaded or written."""
    if args.n_trials < 1:
        raise DataError("--n-trials must be at least 1")
    if args.timeout is not None and not args.timeout > 0:
        raise DataError("--timeout must be a positive number of seconds")
    if args.heartbeat < 1:
        raise DataError("--heartbeat must be at least 1 second")
    if args.grace <= args.heartbeat:
        raise DataError(
            f"--grace ({args.grace} s) must exceed --heartbeat ({args.heartbeat} s), "
            "or live trials would be failed as dead"
        )
    _check_finalise_flags(args)


def _check_finalise_flags(args: argparse.Namespace) -> None:
    if args.confirm_candidates < 1:
        raise DataError("--confirm-candidates must be at least 1")
    if args.confirm_draws < 2:
        raise DataError("--confirm-draws must be at least 2 (a standard error needs two draws)")
    if getattr(args, "select", "best") != "best" and getattr(args, "no_default_comparison", False):
        raise DataError(
            f"--select {args.select} compares the winner with the trading code's default: "
            "drop --no-default-comparison"
        )
    if getattr(args, "promote", False) and getattr(args, "all", False):
        raise DataError(
            "--promote makes one study per symbol live: name the symbols (--symbols) and the "
            "study's windows, task and metric, not --all"
        )


def _finalise_settings(
    args: argparse.Namespace, lease_s: float, retry: Retry | None = None
) -> FinaliseSettings:
    """``retry``: how finalisation waits out a database outage (a launch: its workers' policy)."""
    publish = Publish(
        promote=getattr(args, "promote", False),
        replace_foreign=getattr(args, "replace_foreign", False),
        flat_models=flat_selection_models(),
    )
    return FinaliseSettings(
        candidates=args.confirm_candidates, draws=args.confirm_draws, lease_s=lease_s,
        publish=publish, compare_default=not getattr(args, "no_default_comparison", False),
        select=getattr(args, "select", "best"), retry=retry or Retry(),
    )  # fmt: skip


def launch(args: argparse.Namespace) -> int:
    """Run or resume each study to ``--n-trials``, then finalise and export it. Several
    symbols are a sweep (:mod:`optimise.sweep`): a symbol's own failure is one line and
    skipped, a table ends it, and the exit code is 2 if any symbol failed."""
    _check_launch_flags(args)
    check_writable(Path(args.store))
    url = resolve(args.storage)

    def open_db() -> Database:
        return Database.open(url, heartbeat_interval=args.heartbeat, grace_period=args.grace)

    path = sqlite_path(url)
    db = open_db() if path is None or path.exists() else None  # a new file: no study yet
    taken = take_study_sources(args, db.optuna) if db is not None else None
    if taken is not None:
        print(taken, file=sys.stderr)
    args.data_dir = args.data_dir or DEFAULT_DATA_DIR
    plan = load_each(args, window_spec(args))  # a sweep reports and skips unusable CSVs
    ctxs = contexts(args, plan.bars) if plan.bars else []
    if is_sqlite(url) and ctxs:
        print(
            "note: SQLite suits workers on this machine only; for several hosts use "
            "--storage postgresql+psycopg://USER@HOST/DB",
            file=sys.stderr,
        )
    db = db or (open_db() if ctxs else None)
    progress = not args.no_progress and sys.stderr.isatty()
    settings = WorkerSettings(
        heartbeat_interval_s=args.heartbeat,
        grace_period_s=args.grace,
        progress=progress,
        database_file=db.sqlite_file if db is not None else None,
    )
    outcomes = run_sweep(
        plan, ctxs, _launch_steps(args, db, settings), db.ledger if db else None,
        args.n_trials, progress=progress,
    )  # fmt: skip
    records = [o.done.record for o in outcomes if o.done is not None]
    if plan.sweep:
        rows = [winners.sweep_row(o.symbol, o.study, o.trials, o.done, o.status) for o in outcomes]
        print("\n".join(winners.lines(records, winners.SWEEP_HEADER, rows, winners.SWEEP_GROUPS)))
    else:
        rows = [winners.row(o.study or o.symbol, o.trials, o.done) for o in outcomes]
        print("\n".join(winners.lines(records, winners.HEADER, rows)))
    unfinished = [o.study or o.symbol for o in outcomes if o.failure is None and o.done is None]
    if unfinished:
        print(f"not finished (resume with the same command): {', '.join(unfinished)}")
    failed = [o.symbol for o in outcomes if o.failure is not None]
    if failed:
        print(
            f"failed: {len(failed)} of {len(outcomes)} symbols ({', '.join(failed)}): fix what "
            "their error lines say and run the same command again (the others resume)",
            file=sys.stderr,
        )
    if db is not None:
        print(_dashboard_hint(args.storage, db.label))
    return EXIT_USAGE if failed else 0


def _launch_steps(args: argparse.Namespace, db: Database | None, settings: WorkerSettings) -> Steps:
    """Open, run and finalise one symbol's study, as ``launch`` does."""

    def open_one(ctx: StudyContext) -> optuna.Study:
        assert db is not None
        refreshed = _refresh(args, db, ctx)
        return open_study(
            db.optuna, ctx, storage_label=db.label, warm_start=not args.no_warm_start,
            previous=refreshed.candidates if refreshed else (),
            previous_study=refreshed.previous.name if refreshed else None,
            seed_given=getattr(args, "seed_given", False),
        )  # fmt: skip

    def run_one(study: optuna.Study, ctx: StudyContext) -> RunOutcome:
        assert db is not None
        return run_study(study, ctx, db.ledger, args.n_trials, settings, args.timeout)

    def finalise_one(study: optuna.Study, ctx: StudyContext, wait: bool) -> Finalised:
        assert db is not None
        chosen = _finalise_settings(args, float(args.grace), settings.retry)  # the same policy
        if not wait:  # another worker's finalisation: raise at once (the sweep comes back)
            chosen = dataclasses.replace(chosen, wait_s=0.0)
        done = finalise(study, ctx, db.ledger, Path(args.store), db.label, chosen)
        _report(done)
        return done

    return Steps(open_one, run_one, finalise_one, settings.retry)


def _dashboard_hint(given: str | None, label: str) -> str:
    """The dashboard command for this database, pasteable: a URL with a password reads
    ``$OPTIMISE_STORAGE``, which must hold it (``--storage`` with a password: export it)."""
    storage = storage_arg(label)
    if storage.startswith("'"):
        held = ""
    elif given is None or os.environ.get(STORAGE_ENV) == given:
        held = f"$OPTIMISE_STORAGE: {label}; "
    else:  # the password came with --storage: the variable does not hold it yet
        held = f"first export OPTIMISE_STORAGE=<your --storage URL>, {label}; "
    return f"dashboard: optimise dashboard --storage {storage}  ({held}http://127.0.0.1:8080)"


def _refresh(args: argparse.Namespace, db: Database, ctx: StudyContext) -> Refresh | None:
    """Pick the period ``ctx``'s data belongs to; for a new one (bars appended), keep the
    previous period's record in the store's history and say which study starts and why."""
    refreshed = resolve_period(
        db.optuna, ctx, db.label, refresh=not getattr(args, "no_refresh", False)
    )
    if refreshed is None:
        return None
    previous = refreshed.previous
    exported = StudyAttrs(previous.name, previous.attrs).export_path
    places = [record_path(Path(args.store), ctx.model, ctx.symbol)]
    places += [Path(exported)] if isinstance(exported, str) else []
    kept = keep_previous_record(Path(args.store), refreshed.previous.name, places)
    print(refreshed.line() + (f"; its record kept as {kept}" if kept else ""), flush=True)
    return refreshed


def export(args: argparse.Namespace) -> int:
    """Finalise each study's current best configurations if needed and write the store.

    ``--all`` exports every study of the model in the database (each with the windows, metric,
    checkpoint and data it recorded); ``--symbols`` the named symbols' studies.
    With ``--top N`` it prints their leaderboards instead and writes nothing.
    """
    if args.top is not None:
        return _leaderboard(args, every_study=False)
    _refuse_leaderboard_flags(args)
    _check_finalise_flags(args)
    check_writable(Path(args.store))
    url = resolve(args.storage)
    _require_existing(url)
    db = Database.open(url)
    if not args.all:
        fill_from(args, study_sources(args, db.optuna), "the study")
    rows, records = [], []
    skipped = _current_records(args, db)  # nothing loaded or rewritten for these
    for name, done in skipped.items():
        print(
            f"{name}: record is current (trial {done.record.metadata.trial_number}, "
            f"{done.record.metadata.complete_trials} complete trials: {done.path}); nothing "
            "rewritten (--force publishes it again)"
        )
        warn_if_not_upper_case(args, done.record.symbol)
        _report(done)
        rows.append(winners.row(name, "-", done))
        records.append(done.record)
    if args.all:
        ctxs = _contexts_of_every_study(args, db.optuna, skip=set(skipped))
    else:
        symbols = {done.record.symbol for done in skipped.values()}
        rest = [s for s in dict.fromkeys(args.symbols) if s not in symbols]
        ctxs = contexts(argparse.Namespace(**{**vars(args), "symbols": rest})) if rest else []
        for ctx in ctxs:
            resolve_period(db.optuna, ctx, db.label, refresh=False)  # the data's period
    for ctx in ctxs:
        study = open_study(
            db.optuna, ctx, create=False, storage_label=db.label,
            seed_given=getattr(args, "seed_given", False),
        )  # fmt: skip
        retry = Retry(database_file=db.sqlite_file)
        done = finalise(
            study, ctx, db.ledger, Path(args.store), db.label,
            _finalise_settings(args, 60.0, retry),
        )  # fmt: skip
        _report(done)
        rows.append(winners.row(ctx.name, "-", done))
        records.append(done.record)
    print("\n".join(winners.lines(records, winners.HEADER, rows)))
    return 0


def _current_records(args: argparse.Namespace, db: Database) -> dict[str, Finalised]:
    """The studies ``export`` names whose record is current (:func:`studies.current.current`:
    the same round and trials, the store's files as publishing would write them), by name;
    none with ``--force``, ``--promote`` or ``--replace-foreign``. Reads the data, never the
    model."""
    import optuna

    from objectives.bars import load_bars
    from studies.current import current

    if args.force or args.promote or args.replace_foreign:
        return {}
    settings = _finalise_settings(args, 60.0)
    found = {}
    for name in _exported_study_names(args, db):
        try:
            study = optuna.load_study(study_name=name, storage=db.optuna)
        except KeyError:
            continue  # named as missing by the export itself
        attrs = StudyAttrs.of(study)
        given = argparse.Namespace(**vars(args))
        if args.all:  # (a given source that differs is named once, by the export itself)
            fill_from(given, attrs.sources, f"study {name}", warn=False)
        try:
            bars = load_bars(Path(given.data_dir or DEFAULT_DATA_DIR), attrs.recorded_symbol)
        except (DataError, KeyError, OSError):
            continue  # the export says what is wrong
        done = current(study, db.ledger, args.store, bars, settings)
        if done is not None:
            found[name] = done
            stored = attrs.seed
            if getattr(args, "seed_given", False) and stored != args.seed:
                print(seed_warning(name, stored, args.seed, db.label), file=sys.stderr)
    return found


def _contexts_of_every_study(
    args: argparse.Namespace, storage: Any, skip: set[str] | None = None
) -> list[StudyContext]:
    """One context per study of ``args.model`` in the database, as each study recorded it
    (but those in ``skip``)."""
    from objectives.bars import load_bars
    from objectives.evaluator import load_backend
    from objectives.windows import WindowSpec
    from optimise.setup import disk_cache

    prefix = f"{args.model}:"
    summaries = [
        s for s in all_studies(storage)
        if s.study_name.startswith(prefix) and StudyAttrs.of(s).made_by_optimise
    ]  # fmt: skip
    latest = latest_periods(s.study_name for s in summaries)  # earlier periods are history
    summaries = [s for s in summaries if s.study_name in latest]
    if not summaries:
        raise StudyError(f"no {args.model} studies in the database; run `optimise launch` first")
    summaries = [s for s in summaries if s.study_name not in (skip or ())]
    backends: dict[tuple, Any] = {}
    ctxs = []
    for summary in sorted(summaries, key=lambda s: s.study_name):
        attrs = StudyAttrs.of(summary)
        given = argparse.Namespace(**vars(args))
        fill_from(given, attrs.sources, f"study {summary.study_name}")
        sources = model_sources(given)
        key = tuple(sources.items())
        if key not in backends:
            backends[key] = load_backend(
                args.model, **sources, device=args.device, disk_cache=disk_cache(args)
            )
        bars = load_bars(Path(given.data_dir), attrs.recorded_symbol)
        warn_if_not_upper_case(args, attrs.recorded_symbol)
        ctxs.append(
            StudyContext(
                backends[key],
                bars,
                WindowSpec(**attrs.recorded_windows),
                metric=attrs.recorded_metric,
                seed=attrs.seed,  # checked (and made an int) by open_study
                sources=attrs.sources or {},
                task=task_of(attrs.task),
                period=split_name(summary.study_name)[1],
            )  # fmt: skip
        )
    return ctxs


def task_of(described: Any) -> Task:
    """The task a study recorded (``metadata.task`` of its record); ``levels`` if none."""
    if not isinstance(described, dict):
        return LEVELS
    return Task(
        str(described.get("name", "levels")),
        tuple(described.get("columns") or ("close",)),
        str(described.get("path_score", "mean")),
    )


def _report(done: Finalised) -> None:
    """One line per store file replaced or left as it is (foreign files, another protocol's
    live record, a best record a naive-losing one may not displace), one warning per winner
    that loses to naive."""
    for line in dict.fromkeys((*done.replaced, *done.notes)):  # each line once
        print(line)
    record, meta = done.record, done.record.metadata
    from studies.selection import launch_line

    chose_default = launch_line(record)  # --select exported the trading code's default
    if chose_default is not None:
        print(chose_default, file=sys.stderr)
    if meta.warnings:
        print(impossible_warning(meta.study_name, meta.trial_number, meta.warnings),
              file=sys.stderr)  # fmt: skip
    default = chose_default is not None
    if not record.validation.beats_naive:
        warning = naive_warning(
            meta.study_name, meta.trial_number, record.objective, record.validation,
            default=default,
        )  # fmt: skip
        print(warning, file=sys.stderr)
    edge = edge_warning(
        meta.study_name, meta.trial_number, record.objective, record.test, default=default
    )
    if edge is not None:
        print(edge, file=sys.stderr)


def edge_warning(
    study_name: str, trial_number: int, metric: str, test: Scores, *, default: bool = False
) -> str | None:
    """The one-line warning for a winner whose test edge over naive is not significant at
    :data:`objectives.significance.ALPHA` (paired DM-HLN test); ``None`` when it is, or when
    the record has no paired test (made before them). A warning, never a failure.
    ``default``: the record is the trading code's default's (``--select``)."""
    from objectives.significance import ALPHA

    paired = test.vs_naive
    if paired is None or paired.significant_edge(ALPHA):
        return None
    ratio = "-" if paired.mae_ratio is None else f"{paired.mae_ratio:.4g}"
    worse = paired.dm_stat >= 0 if paired.dm_stat is not None else not (
        paired.mae_ratio is not None and paired.mae_ratio < 1)  # fmt: skip
    detail = f"(mean {metric} {ratio} times naive's, a ratio; DM-HLN p {paired.p_value:.3g})"
    who = _who(trial_number, default)
    if worse and paired.p_value < ALPHA:
        return (
            f"warning: {study_name}: {who} is significantly worse "
            f"than naive on the test window {detail}"
        )
    return (
        f"warning: {study_name}: {who}'s test edge over naive is not "
        f"significant at {ALPHA:.0%}{': it is no better than naive there' if worse else ''} "
        f"{detail}"
    )


def impossible_warning(study_name: str, trial_number: int, warnings: Sequence[str]) -> str:
    """The one-line warning for a winner whose record lists impossible forecasts
    (``metadata.warnings``: prices or band edges at or below 0, kept as computed)."""
    return (
        f"warning: {study_name}: the winner (trial {trial_number}) made impossible forecasts: "
        + "; ".join(warnings)
    )


def _who(trial_number: int, default: bool) -> str:
    return "the exported trading default" if default else f"the winner (trial {trial_number})"


def naive_warning(
    study_name: str, trial_number: int, metric: str, validation: Scores, *, default: bool = False
) -> str:
    """The one-line warning for a winner (or the exported default) that does not beat the last
    close on validation."""
    return (
        f"warning: {study_name}: {_who(trial_number, default)} does not beat "
        f"the naive forecast on validation ({metric} {with_unit(metric, validation.metric(metric))}"
        f" vs naive {with_unit(metric, validation.naive(metric))}); do not trade it"
    )


def status(args: argparse.Namespace) -> int:
    """The studies' table (``--wide``, ``--json``, ``--watch N``), or ``--top N``."""
    from optimise.status import run_status

    if args.top is not None:
        views = [f"--{k}" for k in ("wide", "json", "watch") if getattr(args, k, None)]
        if views:
            raise DataError(
                f"{' and '.join(views)}: for the status table, not the leaderboard "
                "(--top N takes --format and --out)"
            )
        return _leaderboard(args, every_study=True)
    _refuse_leaderboard_flags(args)
    if args.watch is not None and args.json:
        raise DataError("--watch prints the table again; for scripts poll --json instead")
    url = resolve(args.storage)
    _require_existing(url)
    return run_status(args, Database.open(url))


def _refuse_leaderboard_flags(args: argparse.Namespace) -> None:
    given = [f"--{k}" for k in ("format", "out") if getattr(args, k, None) is not None]
    if given:
        raise DataError(f"{' and '.join(given)} only works with --top N (the leaderboard)")


def _leaderboard(args: argparse.Namespace, *, every_study: bool) -> int:
    """``status --top N`` (every study, or those of ``--model``/``--symbols``) and ``export
    --top N`` (the studies export would finalise): print or write the leaderboards, read only."""
    from optimise.leaderboard import load_boards, notes, render, study_names

    url = resolve(args.storage)
    _require_existing(url)
    db = Database.open(url)
    if every_study:
        names = study_names(db.optuna, model=args.model, symbols=args.symbols)
        if not names and (args.model or args.symbols):
            given = [f"--model {args.model}"] if args.model else []
            given += [f"--symbols {' '.join(args.symbols)}"] if args.symbols else []
            raise StudyError(f"no study of {' '.join(given)} in {db.label}")
        if not names:
            print(f"no studies in {db.label}")
            return 0
    else:
        names = _exported_study_names(args, db)
    boards = load_boards(db.optuna, names, args.top)
    text = render(boards, args.format or "table")
    if args.out:
        try:
            Path(args.out).write_text(text)
        except OSError as exc:
            raise DataError(f"cannot write --out {args.out}: {exc.strerror or exc}") from None
        rows = sum(len(b.rows) for b in boards)
        print(f"wrote {rows} rows of {len(boards)} studies to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    for line in notes(boards):
        print(line, file=sys.stderr)
    return 0


def _exported_study_names(args: argparse.Namespace, db: Database) -> list[str]:
    """The studies ``export`` would finalise, without loading data or model: ``--all``, the
    newest period of each of the model's studies; ``--symbols``, the newest period of each
    symbol's study of the given windows, task and metric (a missing one named as it is)."""
    from objectives.bars import check_symbol
    from optimise.leaderboard import study_names
    from optimise.setup import window_spec
    from studies.context import study_name

    latest = sorted(latest_periods(study_names(db.optuna, model=args.model)))
    if args.all:
        if not latest:
            raise StudyError(
                f"no {args.model} studies in the database; run `optimise launch` first"
            )
        return latest
    spec = window_spec(args)
    names = []
    for symbol in dict.fromkeys(args.symbols):
        base = study_name(args.model, check_symbol(symbol), spec, args.metric, args.task_spec)
        names.append(next((n for n in latest if split_name(n)[0] == base), base))
    return names


def cache(args: argparse.Namespace) -> int:
    """``optimise cache info|clear``: the stage-1 cache on disk."""
    from optimise.cache import run_cache

    return run_cache(args)


def forecast(args: argparse.Namespace) -> int:
    from optimise.forecast import run_forecast

    return run_forecast(args)


def dashboard(args: argparse.Namespace) -> int:
    """Serve optuna-dashboard for the same storage (127.0.0.1 unless told otherwise)."""
    from optimise.dashboard import serve

    if not 1 <= args.port <= 65535:
        raise DataError(f"--port {args.port} is not a TCP port (1-65535)")
    url = resolve(args.storage)
    _require_existing(url)
    db = Database.open(url)
    banner = f"optuna-dashboard for {db.label} on http://{args.host}:{args.port}/dashboard"
    serve(
        db.optuna, args.host, args.port, readonly=args.read_only, banner=banner,
        artifacts=args.artifacts,
    )  # fmt: skip
    return 0


def checkpoint_init(args: argparse.Namespace) -> int:
    from optimise.checkpoints import init_checkpoint

    path = init_checkpoint(args.arch, args.preset, args.seed, Path(args.out), force=args.force)
    print(f"wrote a random {args.arch} {args.preset} checkpoint to {path}")
    return 0


def _require_existing(url: URL) -> None:
    path = sqlite_path(url)
    if path is not None and not path.exists():
        raise StorageError(f"no study database at {path}; run `optimise launch` first")
