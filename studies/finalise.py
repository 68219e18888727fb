"""Finalisation, exactly once per (study, candidate set): claim the round, measure it, publish.

A round is the study's current ``K`` best distinct configurations (:mod:`studies.confirm`).
Workers race for the round's claim row in the ledger (a conditional UPDATE with a lease on the
database clock, renewed while the holder works); the winner confirms the candidates on fresh
seeds, scores the confirmed winner once on the test window, times it live, stores the record in
the claim row and publishes it: ``test_scores`` and the confirmation in the study's attrs, the
store files, the dashboard note. Everyone else waits for the result and publishes it too, so a
finaliser killed after its claim committed is repaired by the next ``export`` or launch.
Rows are keyed by the study's creation nonce (``study_uid``), so a study deleted and created
again under the same name never inherits its predecessor's result. Test scores are never read
for selection.

Rounds are ordered by the complete trials they were chosen from, and publishing is monotone:
a compare-and-set of the study's published round in the ledger, made under the store lock
before any file is written, so a late finaliser of an older round never replaces a newer one;
it publishes the newer round instead (:func:`studies.publish.publish`).

This module holds the round protocol (claims, leases, who scores) and the measuring; the
record is built by :mod:`studies.round_record`, published by :mod:`studies.publish`, shown in
optuna-dashboard by :mod:`studies.note`; the attrs it reads and writes are :mod:`studies.attrs`.
The measuring stays here, beside the claims: it is what a lost lease must not repeat, and the
tests count its ``evaluate`` and ``confirm`` calls through this module.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from objectives.evaluator import Scored, evaluate
from objectives.latency import live_latency
from storage.faults import is_db_error, root_cause
from storage.ledger import Ledger, Publication
from storage.record import Record
from storage.store import Publish
from studies.attrs import UID, StudyAttrs, TrialAttrs
from studies.confirm import (
    DEFAULT_CANDIDATES,
    DEFAULT_DRAWS,
    candidates,
    confirm,
    ranking_key,
    winner,
)
from studies.context import StudyContext
from studies.exceptions import StudyError
from studies.note import paired_note as _paired_note  # noqa: F401 - tests read it here
from studies.owners import is_dead_local, this_worker
from studies.periodic import Periodic
from studies.picture import forecast_data
from studies.publish import Finalised as Finalised  # re-exported: callers import it here
from studies.publish import publish
from studies.resilient import Retry
from studies.round_record import Measured, build_record
from studies.selection import BEST

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FinaliseSettings:
    """How many configurations to confirm on how many seed sets, and how claims behave."""

    candidates: int = DEFAULT_CANDIDATES
    draws: int = DEFAULT_DRAWS
    lease_s: float = 60.0  # the heartbeat grace: a silent holder elsewhere is replaced after it
    wait_s: float = 3600.0
    #: score the trading code's defaults beside the winner (``vs_default``): two more
    #: evaluations, hours for a 7-step Kronos path at its 192 samples on a CPU
    compare_default: bool = True
    #: what publishing may replace: another protocol's live record, foreign files
    publish: Publish = field(default_factory=Publish)
    #: ``--select``: export the winner (``best``) or the default when its edge is not
    #: significant (``default-if-insignificant``, ``studies/selection.py``)
    select: str = BEST
    #: how every storage call of finalisation waits out a database outage (the worker's
    #: policy: ``WorkerSettings.retry``); each call it retries is idempotent
    retry: Retry = field(default_factory=Retry)


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The complete trial with the best first-pass validation value (first one on ties)."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return None
    return min(complete, key=ranking_key(study))


def study_key(study: optuna.Study, ctx: StudyContext) -> str:
    """The ledger key of this incarnation of the study: name, creation nonce, data."""
    uid = StudyAttrs.of(study).uid
    if not uid:
        raise StudyError(f"study {ctx.name} has no {UID}; it was not made by optimise")
    return f"{ctx.name}#{uid}#{ctx.fingerprint}"


def finalise(
    study: optuna.Study,
    ctx: StudyContext,
    ledger: Ledger,
    store: Path,
    storage_label: str,
    settings: FinaliseSettings | None = None,
) -> Finalised:
    """Make sure the current candidates are confirmed, test-scored once and exported.

    A finaliser that comes back late (a slow host, a paused process) never undoes a newer
    round's work: it does not score the test window once its lease is lost or a round chosen
    from more trials is published, and publishing is a compare-and-set on the ledger
    (:meth:`storage.ledger.Ledger.publish`), so it never writes an older winner over a newer
    one. Either way it publishes what is published now and returns it.

    Every storage call waits out a database outage (``settings.retry``); each is idempotent,
    and none of the measuring is repeated by a retry (``docs/design-notes.md``, "Retried
    writes").
    """
    settings = settings or FinaliseSettings()
    retry = settings.retry
    complete, chosen = retry(lambda: _candidates(study, settings))
    if not chosen:
        raise StudyError(f"study {ctx.name} has no complete trial to export yet")
    key = retry(lambda: study_key(study, ctx))
    this = _Round(_round_key(chosen, settings), len(complete))
    owner = f"{this_worker()}:{uuid.uuid4().hex[:8]}"
    deadline = time.monotonic() + settings.wait_s
    announced = None
    scored: Record | None = None  # scored by this call and not yet stored in the ledger
    tested = False  # whether this call scored the test window
    while True:
        newer = retry(lambda: _newer_published(ledger, key, this))
        if newer is not None:
            return publish(
                study, ctx, ledger, key, newer.round_key, None, store, scored_here=tested,
                publish=settings.publish, notes=(_superseded(ctx, this, newer),), retry=retry,
            )  # fmt: skip
        claim = retry(
            lambda: ledger.claim(key, this.round_key, chosen[0].number, owner, settings.lease_s)
        )
        if claim.state == "busy" and claim.owner and is_dead_local(claim.owner.rsplit(":", 1)[0]):
            logger.warning("finaliser %s of %s died; taking over", claim.owner, ctx.name)
            take = partial(
                ledger.take_over, key, this.round_key, claim.owner, owner, settings.lease_s
            )
            if retry(take):
                claim = type(claim)("won")
        if claim.state == "won":
            if scored is None:
                with _lease_keeper(ledger, key, this.round_key, owner, settings.lease_s):
                    try:
                        scored = _score(
                            study, ctx, chosen, settings, storage_label, this.complete_trials,
                            before_test=lambda: retry(lambda: _still_ours(
                                ctx, ledger, key, this, owner, settings.lease_s)),
                        )  # fmt: skip
                    except _Superseded as why:
                        retry(lambda: ledger.release(key, this.round_key, owner))  # if ours
                        logger.info("%s", why)
                        continue
                    except BaseException:
                        _release_after_failure(ledger, key, this.round_key, owner)
                        raise
                tested = True
            result = json.dumps(scored.to_json())
            if retry(partial(ledger.complete, key, this.round_key, owner, result)):
                return publish(
                    study, ctx, ledger, key, this.round_key, scored, store, scored_here=True,
                    publish=settings.publish, retry=retry,
                )  # fmt: skip
            # the lease was lost meanwhile: see what became of the round (done by the
            # finaliser that took it over, or free again and completed with this record)
            logger.info("%s: finalisation lease lost before the result was stored", ctx.name)
            continue
        if claim.state == "done":
            assert claim.result is not None
            record = Record.from_json(claim.result, f"the finalisation row of {ctx.name}")
            return publish(
                study, ctx, ledger, key, this.round_key, record, store, scored_here=tested,
                publish=settings.publish, retry=retry,
            )  # fmt: skip
        if claim.owner != announced:
            announced = claim.owner
            print(
                f"{ctx.name}: waiting for {claim.owner} to finish confirming and test-scoring",
                flush=True,
            )
        if time.monotonic() > deadline:
            raise StudyError(
                f"{claim.owner} still holds the finalisation of {ctx.name} after "
                f"{settings.wait_s:.0f} s; run export again later"
            )
        time.sleep(0.5)


@dataclass(frozen=True)
class _Round:
    """A finalisation round: its ledger key and how many complete trials it was chosen from
    (what orders a study's rounds: more trials is newer)."""

    round_key: str
    complete_trials: int


def _candidates(
    study: optuna.Study, settings: FinaliseSettings
) -> tuple[list[FrozenTrial], list[FrozenTrial]]:
    """The study's complete trials (read once) and the round's candidates among them."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return complete, candidates(study, settings.candidates, complete)


def _release_after_failure(ledger: Ledger, key: str, round_key: str, owner: str) -> None:
    """Give the round back after the measuring failed or was interrupted, so another worker
    may take it at once: one attempt, not retried. The failure is what the command reports
    (waiting out an outage first would only delay it, or hide it behind exit code 3), and a
    lease that is not given back runs out by itself (``lease_s``)."""
    try:
        ledger.release(key, round_key, owner)
    except Exception as exc:  # noqa: BLE001 - the lease runs out; the failure is raised
        if not is_db_error(exc):
            raise
        logger.info("could not give back the finalisation lease of %s: %s", key, root_cause(exc))


class _Superseded(Exception):
    """This finaliser's claim is no longer worth working on: its lease was lost, or a newer
    round was published meanwhile."""


def _newer_published(ledger: Ledger, key: str, this: _Round) -> Publication | None:
    """The published round when it was chosen from more complete trials than ``this``."""
    published = ledger.published(key)
    if published is not None and published.complete_trials > this.complete_trials:
        return published
    return None


def _still_ours(
    ctx: StudyContext, ledger: Ledger, key: str, this: _Round, owner: str, lease_s: float
) -> None:
    """Raise :class:`_Superseded` unless this finaliser still holds its round (renewing the
    lease now) and no newer round is published: checked before the test window is scored,
    so a finaliser that was paused while confirming never scores it a second time."""
    if not ledger.renew(key, this.round_key, owner, lease_s):
        raise _Superseded(f"{ctx.name}: the finalisation lease was lost while confirming")
    newer = _newer_published(ledger, key, this)
    if newer is not None:
        raise _Superseded(_superseded(ctx, this, newer))


def _superseded(ctx: StudyContext, this: _Round, newer: Publication) -> str:
    return (
        f"{ctx.name}: the round chosen from {this.complete_trials} complete trials was not "
        f"finalised: a newer round (chosen from {newer.complete_trials} complete trials, "
        f"trial {newer.trial_number}) is published"
    )


def _round_key(chosen: list[FrozenTrial], settings: FinaliseSettings) -> str:
    parts: list[Any] = [[t.number for t in chosen], settings.candidates, settings.draws]
    text = json.dumps(parts if settings.select == BEST else [*parts, settings.select])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _score(
    study: optuna.Study,
    ctx: StudyContext,
    chosen: list[FrozenTrial],
    settings: FinaliseSettings,
    storage_label: str,
    complete_trials: int,
    before_test: Callable[[], None] = lambda: None,
) -> Record:
    """Measure the round and build its record (:mod:`studies.round_record`);
    ``complete_trials`` is the count its candidates were chosen from. ``before_test`` runs
    once confirmation is done, before anything reads the test window."""
    # a deterministic model gives every seed set the same score: one draw
    draws = 1 if ctx.deterministic else settings.draws
    attrs = settings.retry(lambda: StudyAttrs.of(study))  # read before anything is measured
    confirmed = confirm(ctx, chosen, draws)
    before_test()
    best = winner(confirmed, ctx.metric)
    winning = best.settings
    first = next(t for t in chosen if t.number == best.trial_number)
    first_scored = evaluate(
        ctx.search_evaluator, ctx.bars, ctx.windows.validation, winning, ctx.seed
    )  # the first pass again (cached): its naive values and forecasts
    scored_test = evaluate(ctx.test_evaluator, ctx.bars, ctx.windows.test, winning, ctx.seed)
    val_forecasts = TrialAttrs.of(first).val_forecasts or first_scored.forecast
    forecasts = forecast_data(ctx, winning, np.asarray(val_forecasts), scored_test.forecast)
    defaults = _score_default(ctx) if settings.compare_default else None
    val_latency = live_latency(
        ctx.backend, ctx.bars.head(ctx.windows.validation_end), ctx.windows.validation, winning,
        ctx.seed, ctx.task, ctx.spec.horizon,
    )  # fmt: skip
    test_latency = live_latency(
        ctx.backend, ctx.bars.head(ctx.windows.test_end), ctx.windows.test, winning, ctx.seed,
        ctx.task, ctx.spec.horizon,
    )  # fmt: skip
    measured = Measured(
        best=best,
        confirmed=confirmed,
        draws=draws,
        objective_value=float(first.value) if first.value is not None else None,
        validation=first_scored,
        test=scored_test,
        forecasts=forecasts,
        defaults=defaults,
        validation_latency=val_latency,
        test_latency=test_latency,
    )
    return build_record(
        ctx,
        measured,
        study_uid=attrs.uid,
        sources=attrs.sources or ctx.sources,
        storage_label=storage_label,
        complete_trials=complete_trials,
        created_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        rule=settings.select,
    )


def _score_default(ctx: StudyContext) -> tuple[Scored, Scored]:
    """The trading code's defaults scored on the validation and the test targets under the
    study seed: the winner's draws (common random numbers)."""
    default = ctx.backend.space.trading_default()
    return (
        evaluate(ctx.search_evaluator, ctx.bars, ctx.windows.validation, default, ctx.seed),
        evaluate(ctx.test_evaluator, ctx.bars, ctx.windows.test, default, ctx.seed),
    )


def _lease_keeper(ledger: Ledger, key: str, round_key: str, owner: str, lease_s: float) -> Periodic:
    """Renews a finalisation lease every quarter of it while its holder works."""

    def renew() -> bool:
        if ledger.renew(key, round_key, owner, lease_s):
            return True
        logger.info("finalisation lease of %s was lost", key)  # the main thread says what next
        return False

    return Periodic(f"renewing the finalisation lease of {key}", max(lease_s / 4, 0.5), renew)
