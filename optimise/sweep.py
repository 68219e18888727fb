"""Sweeps: one ``launch`` over many symbols (``--all``, or ``--symbols`` with several).

A symbol that fails on its own (its CSV malformed, empty, too short or unreadable, its study
refusing to resume, its trials failing in a row, its finalisation failing) is reported in one
line and skipped; the other symbols go on, the summary table says which failed and why, and
the exit code is 2. An error that concerns the whole run (the storage, the database, the store,
a flag, the model) still stops it at once with its own exit code. A launch of one symbol is no
sweep: its errors stop it as before.

Workers share a sweep: each study's trial budget is exact (``studies.worker``) and its
finalisation happens once (``studies.finalise``); on top of that a sweep worker leaves for
later a study whose remaining trials other workers are running, or that another worker is
finalising, and takes the next symbol instead, so two workers on one ``--all`` spread over
the studies rather than wait on each other. A study left for later is finished on the way back.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import optuna
from sqlalchemy import func, select
from tqdm import tqdm

from errors import EXIT_USAGE, OptimiseError
from objectives.bars import Bars, load_bars
from objectives.exceptions import DataError
from objectives.windows import WindowSpec, split
from optimise.setup import symbols
from storage.exceptions import StorageError
from storage.faults import is_db_error
from storage.ledger import Ledger, finalisation, trial_counts
from storage.optuna_internals import study_id
from studies.context import StudyContext
from studies.finalise import Finalised, study_key
from studies.resilient import Retry
from studies.worker import RunOutcome

logger = logging.getLogger(__name__)

REASON_IN_TABLE = 120  # characters of a failure's reason in the summary table (the line: all)


@dataclass(frozen=True)
class Steps:
    """What the sweep does to one symbol: open (or resume) its study, run its trials, and
    finalise it (``wait``: wait for another worker's finalisation rather than raise)."""

    open: Callable[[StudyContext], optuna.Study]
    run: Callable[[optuna.Study, StudyContext], RunOutcome]
    finalise: Callable[[optuna.Study, StudyContext, bool], Finalised]
    #: how the sweep's own reads (who holds what) wait out a database outage
    retry: Retry = field(default_factory=Retry)


@dataclass(frozen=True)
class Outcome:
    """One symbol's line of the summary: its study, trials, record, or why it failed."""

    symbol: str
    study: str | None = None
    trials: str = "-"
    done: Finalised | None = None
    failure: str | None = None

    @property
    def status(self) -> str:
        if self.failure is not None:
            reason = self.failure
            if len(reason) > REASON_IN_TABLE:
                reason = reason[: REASON_IN_TABLE - 3] + "..."
            return f"failed: {reason}"
        return "ok" if self.done is not None else "unfinished"


@dataclass
class _Item:
    ctx: StudyContext
    study: optuna.Study | None = None
    deferred: bool = False
    trials: str = "-"  # finished/target, once run


@dataclass(frozen=True)
class Plan:
    """The symbols of a launch in order, the bars of those whose data is usable, the outcomes
    of those whose data is not (each already reported), and whether this is a sweep."""

    names: list[str]
    bars: list[Bars]
    failed: list[Outcome]
    sweep: bool


def load_each(args: argparse.Namespace, spec: WindowSpec) -> Plan:
    """Every symbol's bars, each long enough for ``spec``. In a sweep a symbol whose CSV is
    unusable is reported in one line and left out; otherwise its error is raised (nothing is
    written either way). A bad ``--data-dir`` or ticker stops the run at once."""
    names = symbols(args)
    sweep = bool(getattr(args, "all", False)) or len(names) > 1
    good: list[Bars] = []
    failed: list[Outcome] = []
    for name in names:
        try:
            good.append(_checked_bars(Path(args.data_dir), name, spec))
        except DataError as exc:
            if not sweep:
                raise
            failed.append(_failed(name, None, exc))
            report(failed[-1])
    return Plan(names, good, failed, sweep)


def _checked_bars(data_dir: Path, name: str, spec: WindowSpec) -> Bars:
    try:
        bars = load_bars(data_dir, name)
    except OSError as exc:  # e.g. no permission: a CSV that cannot be read
        raise DataError(f"cannot read {data_dir / f'{name}.csv'}: {exc.strerror or exc}") from None
    try:
        split(len(bars), spec)
    except DataError as exc:
        raise DataError(f"{bars.symbol}: {exc}") from None
    return bars


def run_sweep(
    plan: Plan,
    ctxs: list[StudyContext],
    steps: Steps,
    ledger: Ledger | None,
    n_trials: int,
    *,
    progress: bool,
) -> list[Outcome]:
    """Run every context's study to ``n_trials`` and finalise it; one :class:`Outcome` per
    symbol of ``plan``, in its order. Outside a sweep every error is raised; in one, only
    those that concern the whole run (:func:`concerns_the_run`)."""
    outcomes = {o.symbol: o for o in plan.failed}
    queue = deque(_Item(ctx) for ctx in ctxs)
    bar = tqdm(
        total=len(plan.names),
        initial=len(outcomes),
        desc="symbols",
        unit="symbol",
        disable=not (plan.sweep and progress),
    )
    with bar, _lines_above(bar):
        _postfix(bar, outcomes.values())
        while queue:
            assert ledger is not None  # a study to run: the database is open
            item = queue.popleft()
            later = any(not other.deferred for other in queue)  # something else to do first
            try:
                outcome = _one(item, steps, ledger, n_trials, later)
            except Exception as exc:  # noqa: BLE001 - sorted: the run's errors are raised
                if not plan.sweep or concerns_the_run(exc) or os.environ.get("OPTIMISE_DEBUG"):
                    raise
                logger.debug("%s failed", item.ctx.name, exc_info=True)
                outcome = _failed(item.ctx.symbol, item.ctx.name, exc, item.trials)
                report(outcome)
            if outcome is None:  # left for later: other workers hold what remains of it
                logger.info("%s: other workers hold what remains; back to it later", item.ctx.name)
                item.deferred = True
                queue.append(item)
                continue
            outcomes[outcome.symbol] = outcome
            bar.update()
            _postfix(bar, outcomes.values())
    return [outcomes[name] for name in plan.names if name in outcomes]


def _one(item: _Item, steps: Steps, ledger: Ledger, n_trials: int, later: bool) -> Outcome | None:
    """Open, run and finalise one study; ``None`` when it is better left for later."""
    ctx = item.ctx
    if item.study is None:
        item.study = steps.open(ctx)
    study = item.study
    if later and steps.retry(lambda: _trials_taken_elsewhere(study, ledger, n_trials)):
        return None
    outcome = steps.run(study, ctx)
    trials = item.trials = f"{outcome.finished}/{outcome.target}"
    if not outcome.reached:
        return Outcome(ctx.symbol, ctx.name, trials)
    if later:
        if steps.retry(lambda: _finalising_elsewhere(study, ctx, ledger)):
            return None
        try:
            done = steps.finalise(study, ctx, False)
        except OptimiseError:
            if steps.retry(lambda: _finalising_elsewhere(study, ctx, ledger)):  # claimed meanwhile
                return None
            raise
    else:
        done = steps.finalise(study, ctx, True)
    return Outcome(ctx.symbol, ctx.name, trials, done)


def _trials_taken_elsewhere(study: optuna.Study, ledger: Ledger, n_trials: int) -> bool:
    """The study's remaining budget is spoken for by running trials (none queued): a worker
    would only wait for them."""
    counts = trial_counts(ledger.engine, study_id(study))
    finished = counts.get("COMPLETE", 0) + counts.get("PRUNED", 0)
    running, waiting = counts.get("RUNNING", 0), counts.get("WAITING", 0)
    return finished < n_trials and waiting == 0 and finished + running >= n_trials


def _finalising_elsewhere(study: optuna.Study, ctx: StudyContext, ledger: Ledger) -> bool:
    """Another worker holds a finalisation round of this study (read only; the claim itself
    stays ``studies.finalise``'s, which also takes over from a dead holder)."""
    query = (
        select(func.count())
        .select_from(finalisation)
        .where(finalisation.c.study_key == study_key(study, ctx))
        .where(finalisation.c.status == "pending")
        .where(finalisation.c.owner.is_not(None))
    )
    with ledger.engine.connect() as connection:
        return bool(connection.execute(query).scalar())


def concerns_the_run(exc: BaseException) -> bool:
    """Errors no other symbol would escape: the storage and the store (including a database
    that stayed unreachable, exit code 3), any error with its own exit code, and database
    errors; a symbol's data, study or trials are its own."""
    if isinstance(exc, StorageError) or is_db_error(exc):
        return True
    if isinstance(exc, OptimiseError):
        return exc.exit_code != EXIT_USAGE or str(exc).startswith("database error")
    return False


def _failed(symbol: str, study: str | None, exc: BaseException, trials: str = "-") -> Outcome:
    if isinstance(exc, OptimiseError):
        reason = str(exc)
    else:
        reason = f"unexpected {type(exc).__name__}: {exc} (OPTIMISE_DEBUG=1 shows details)"
    reason = reason.removeprefix(f"{symbol}: ")  # the line names the symbol
    return Outcome(symbol, study, trials, failure=" ".join(reason.split()))  # one line


def report(outcome: Outcome) -> None:
    """The failed symbol's one line, on stderr, above the progress bars."""
    tqdm.write(f"error: {outcome.symbol}: {outcome.failure} (skipped)", file=sys.stderr)


def _postfix(bar: tqdm, outcomes: Iterable[Outcome]) -> None:
    if bar.disable:
        return
    states = [o.failure is None for o in outcomes]
    bar.set_postfix_str(f"{sum(states)} ok, {len(states) - sum(states)} failed")


class _AboveBars:
    """A stdout that prints whole lines above the progress bars (``tqdm.write``)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._pending = ""

    def write(self, text: str) -> int:
        *lines, self._pending = (self._pending + text).split("\n")
        for line in lines:
            tqdm.write(line, file=self._stream)
        return len(text)

    def close_line(self) -> None:
        if self._pending:
            tqdm.write(self._pending, file=self._stream)
            self._pending = ""

    def __getattr__(self, name: str) -> Any:  # flush, isatty, encoding, ...: the stream's
        return getattr(self._stream, name)


@contextlib.contextmanager
def _lines_above(bar: tqdm) -> Iterator[None]:
    """While the sweep's bar shows, the studies' lines (exports, refreshes) go above it."""
    if bar.disable:
        yield
        return
    above = _AboveBars(sys.stdout)
    try:
        with contextlib.redirect_stdout(above):
            yield
    finally:
        above.close_line()
