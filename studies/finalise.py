"""Finalisation, exactly once per (study, candidate set): confirm, score the test, export.

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
it publishes the newer round instead (:func:`_publish`).
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from objectives.evaluator import Scored, evaluate
from objectives.latency import live_latency
from objectives.metrics import METRIC_NAMES, METRICS, Metrics
from objectives.sanity import record_warnings
from objectives.significance import ALPHA, diebold_mariano, per_target_loss
from storage.ledger import Ledger, Publication
from storage.names import named_config
from storage.record import (
    JSONObject,
    JSONValue,
    Losses,
    Metadata,
    Paired,
    Record,
    Scores,
    Selection,
)
from storage.store import Publish, Summary, read_stored, write_picture, write_record
from studies.confirm import (
    DEFAULT_CANDIDATES,
    DEFAULT_DRAWS,
    Candidate,
    candidates,
    confirm,
    confirmation_seeds,
    ranking_key,
    winner,
)
from studies.context import StudyContext
from studies.exceptions import StudyError
from studies.open import UID_ATTR
from studies.owners import is_dead_local, this_worker
from studies.periodic import Periodic
from studies.picture import forecast_data, render
from studies.protocol_record import record_windows
from studies.recount import as_published
from studies.selection import BEST, exported_default, select, summary_of

logger = logging.getLogger(__name__)

#: the record's schema: 2 adds metadata.task, the metric maps, per-column and per-step scores
SCHEMA_VERSION = 2


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


@dataclass(frozen=True)
class Finalised:
    """The exported record, where it was written, and whether this call scored the test."""

    record: Record
    path: Path  # the live record when this study's record is live, else the study's own
    scored_here: bool
    replaced: list[str]  # one line per store file this call overwrote
    #: one line each: a file left as it is and why, a foreign file replaced or seen
    notes: tuple[str, ...] = ()
    live: bool = True  # whether the study's record is the live <model>/<SYMBOL>.json


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The complete trial with the best first-pass validation value (first one on ties)."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return None
    return min(complete, key=ranking_key(study))


def study_key(study: optuna.Study, ctx: StudyContext) -> str:
    """The ledger key of this incarnation of the study: name, creation nonce, data."""
    uid = study.user_attrs.get(UID_ATTR)
    if not uid:
        raise StudyError(f"study {ctx.name} has no {UID_ATTR}; it was not made by optimise")
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
    """
    settings = settings or FinaliseSettings()
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    chosen = candidates(study, settings.candidates, complete)
    if not chosen:
        raise StudyError(f"study {ctx.name} has no complete trial to export yet")
    key = study_key(study, ctx)
    this = _Round(_round_key(chosen, settings), len(complete))
    owner = f"{this_worker()}:{uuid.uuid4().hex[:8]}"
    deadline = time.monotonic() + settings.wait_s
    announced = None
    scored: Record | None = None  # scored by this call and not yet stored in the ledger
    tested = False  # whether this call scored the test window
    while True:
        newer = _newer_published(ledger, key, this)
        if newer is not None:
            return _publish(
                study, ctx, ledger, key, newer.round_key, None, store, scored_here=tested,
                publish=settings.publish, notes=(_superseded(ctx, this, newer),),
            )  # fmt: skip
        claim = ledger.claim(key, this.round_key, chosen[0].number, owner, settings.lease_s)
        if claim.state == "busy" and claim.owner and is_dead_local(claim.owner.rsplit(":", 1)[0]):
            logger.warning("finaliser %s of %s died; taking over", claim.owner, ctx.name)
            if ledger.take_over(key, this.round_key, claim.owner, owner, settings.lease_s):
                claim = type(claim)("won")
        if claim.state == "won":
            if scored is None:
                with _lease_keeper(ledger, key, this.round_key, owner, settings.lease_s):
                    try:
                        scored = _score(
                            study, ctx, chosen, settings, storage_label, this.complete_trials,
                            before_test=lambda: _still_ours(ctx, ledger, key, this, owner,
                                                            settings.lease_s),
                        )  # fmt: skip
                    except _Superseded as why:
                        ledger.release(key, this.round_key, owner)  # if it is still ours
                        logger.info("%s", why)
                        continue
                    except BaseException:
                        ledger.release(key, this.round_key, owner)
                        raise
                tested = True
            if ledger.complete(key, this.round_key, owner, json.dumps(scored.to_json())):
                return _publish(
                    study, ctx, ledger, key, this.round_key, scored, store, scored_here=True,
                    publish=settings.publish,
                )  # fmt: skip
            # the lease was lost meanwhile: see what became of the round (done by the
            # finaliser that took it over, or free again and completed with this record)
            logger.info("%s: finalisation lease lost before the result was stored", ctx.name)
            continue
        if claim.state == "done":
            assert claim.result is not None
            record = Record.from_json(claim.result, f"the finalisation row of {ctx.name}")
            return _publish(
                study, ctx, ledger, key, this.round_key, record, store, scored_here=tested,
                publish=settings.publish,
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
    """The round's record; ``complete_trials`` is the count its candidates were chosen from.
    ``before_test`` runs once confirmation is done, before anything reads the test window."""
    confirmed = confirm(ctx, chosen, settings.draws)
    before_test()
    best = winner(confirmed, ctx.metric)
    winning = best.settings
    first = next(t for t in chosen if t.number == best.trial_number)
    first_scored = evaluate(
        ctx.search_evaluator, ctx.bars, ctx.windows.validation, winning, ctx.seed
    )  # the first pass again (cached): its naive values and forecasts
    val_metrics = first_scored.metrics
    scored_test = evaluate(ctx.test_evaluator, ctx.bars, ctx.windows.test, winning, ctx.seed)
    test = scored_test.metrics
    val_forecasts = first.user_attrs.get("val_forecasts") or first_scored.forecast
    forecasts = forecast_data(ctx, winning, np.asarray(val_forecasts), scored_test.forecast)
    impossible = record_warnings(
        ctx.bars, (("validation", first_scored.paths), ("test", scored_test.paths)),
        forecasts.band_low,
    )  # fmt: skip
    defaults = _score_default(ctx) if settings.compare_default else None
    val_paired, val_losses = _paired(ctx, val_metrics, defaults and defaults[0].metrics)
    test_paired, test_losses = _paired(ctx, test, defaults and defaults[1].metrics)
    forecasts = dataclasses.replace(
        forecasts,
        default=None if defaults is None else _joined(defaults[0].forecast, defaults[1].forecast),
        losses=Losses(
            metric=ctx.metric, **{k: _joined(val_losses[k], test_losses[k]) for k in val_losses}
        ),
    )
    val_latency = live_latency(
        ctx.backend, ctx.bars.head(ctx.windows.validation_end), ctx.windows.validation, winning,
        ctx.seed, ctx.task, ctx.spec.horizon,
    )  # fmt: skip
    test_latency = live_latency(
        ctx.backend, ctx.bars.head(ctx.windows.test_end), ctx.windows.test, winning, ctx.seed,
        ctx.task, ctx.spec.horizon,
    )  # fmt: skip
    confirmed_metrics = {m: best.mean(m) for m in METRIC_NAMES}
    per_column: dict[str, JSONValue] = {
        column: {m: best.mean(f"{column}/{m}") for m in METRIC_NAMES}
        for column in ctx.task.columns
    }
    validation = Scores(
        price_mae=best.mean("price_mae"),
        return_mae=best.mean("return_mae"),
        pct_return_mae=best.mean("return_mae"),
        latency_s=val_latency.latency_s,
        naive_price_mae=val_metrics.naive_price_mae,
        naive_return_mae=val_metrics.naive_return_mae,
        skill=_skill(best.mean("price_mae"), val_metrics.naive_price_mae),
        beats_naive=METRICS[ctx.metric].better(
            best.mean(ctx.metric), val_metrics.naive(ctx.metric)
        ),
        metrics=confirmed_metrics,
        naive_metrics=dict(val_metrics.naive_values),
        per_column=per_column,
        per_step=_steps(val_metrics) if ctx.spec.horizon > 1 else None,
        vs_naive=val_paired["naive"],
        vs_default=val_paired["default"],
    )
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    record = Record(
        symbol=ctx.symbol,
        model=ctx.model,
        config=named_config(ctx.model, winning.to_config()),
        validation=validation,
        test=Scores(
            price_mae=test.price_mae,
            return_mae=test.return_mae,
            pct_return_mae=test.return_mae,
            latency_s=test_latency.latency_s,
            naive_price_mae=test.naive_price_mae,
            naive_return_mae=test.naive_return_mae,
            skill=test.skill,
            beats_naive=test.beats_naive(ctx.metric),
            metrics=dict(test.values),
            naive_metrics=dict(test.naive_values),
            per_column={c: dict(v) for c, v in test.per_column.items()},
            per_step=_steps(test) if ctx.spec.horizon > 1 else None,
            vs_naive=test_paired["naive"],
            vs_default=test_paired["default"],
        ),
        windows=record_windows(ctx),
        metadata=Metadata(
            source="optimise (optuna)",
            schema_version=SCHEMA_VERSION,
            study_name=ctx.name,
            study_uid=study.user_attrs.get(UID_ATTR),
            trial_number=best.trial_number,
            objective=ctx.metric,
            objective_value=float(first.value) if first.value is not None else None,
            task=ctx.task.describe(ctx.model, ctx.spec.horizon),
            storage=storage_label,
            data_fingerprint=ctx.fingerprint,
            checkpoint=ctx.backend.checkpoint_id,
            sources=study.user_attrs.get("sources") or ctx.sources,
            seed=ctx.seed,
            min_context=ctx.spec.min_context,
            selection=_selection(ctx, best, confirmed, settings),
            latency={"validation": val_latency.as_dict(), "test": test_latency.as_dict()},
            forecasts=forecasts,
            validation_naive_price_mae=validation.naive_price_mae,
            validation_skill=validation.skill,
            test_naive_price_mae=test.naive_price_mae,
            test_skill=test.skill,
            complete_trials=complete_trials,
            validation_end=_iso(ctx.bars.timestamps[ctx.windows.validation[-1]]),
            test_end=_iso(ctx.bars.timestamps[ctx.windows.test[-1]]),
            created_at=now,
            warnings=impossible,
        ),
    )
    losses = {"validation": val_losses, "test": test_losses}
    return select(ctx, record, settings.select, defaults, losses)  # --select (issue 20 item 3)


def _score_default(ctx: StudyContext) -> tuple[Scored, Scored]:
    """The trading code's defaults scored on the validation and the test targets under the
    study seed: the winner's draws (common random numbers)."""
    default = ctx.backend.space.trading_default()
    return (
        evaluate(ctx.search_evaluator, ctx.bars, ctx.windows.validation, default, ctx.seed),
        evaluate(ctx.test_evaluator, ctx.bars, ctx.windows.test, default, ctx.seed),
    )


def _joined(validation: Iterable[float], test: Iterable[float]) -> tuple[float, ...]:
    """Validation then test values, as ``metadata.forecasts`` holds them."""
    return (*map(float, validation), *map(float, test))


def _paired(
    ctx: StudyContext, scored: Metrics, default: Metrics | None
) -> tuple[dict[str, Paired | None], dict[str, np.ndarray]]:
    """The winner's paired tests against naive and against the trading code's defaults
    (``None`` when they were not scored) on one window (``objectives/significance.py``), and
    the per-target losses they compare."""
    loss = {
        "forecast": per_target_loss(scored, ctx.metric, ctx.task.path_score),
        "naive": per_target_loss(scored, ctx.metric, ctx.task.path_score, naive=True),
    }
    if default is not None:
        loss["default"] = per_target_loss(default, ctx.metric, ctx.task.path_score)
    tests: dict[str, Paired | None] = {
        other: Paired(**diebold_mariano(loss["forecast"], loss[other], ctx.spec.horizon).as_dict())
        if other in loss else None
        for other in ("naive", "default")
    }  # fmt: skip
    return tests, loss


def _steps(metrics: Metrics) -> tuple[JSONObject, ...]:
    return tuple({m: float(v) for m, v in step.items()} for step in metrics.per_step)


def _selection(
    ctx: StudyContext, best: Candidate, confirmed: list[Candidate], settings: FinaliseSettings
) -> Selection:
    return Selection(
        method=(
            f"the {len(confirmed)} best distinct configurations of the search (one seed set, "
            f"common to every trial) re-scored on {settings.draws} fresh seed sets; the lowest "
            f"mean {ctx.metric} wins; the first pass is not part of the mean"
        ),
        first_pass_price_mae=best.first_pass["price_mae"],
        confirmed_price_mae=best.mean("price_mae"),
        confirmed_price_mae_se=best.standard_error("price_mae"),
        first_pass_return_mae=best.first_pass["return_mae"],
        confirmed_return_mae=best.mean("return_mae"),
        confirmed_return_mae_se=best.standard_error("return_mae"),
        search_seed=ctx.seed,
        seeds=tuple(confirmation_seeds(ctx.seed, settings.draws)),
        candidates=tuple(c.summary(ctx.metric) for c in confirmed),
    )


def _skill(mae: float, naive: float) -> float:
    return 0.0 if naive == 0 else 1.0 - mae / naive


def _publish(
    study: optuna.Study,
    ctx: StudyContext,
    ledger: Ledger,
    key: str,
    round_key: str,
    record: Record | None,
    store: Path,
    *,
    scored_here: bool,
    publish: Publish | None = None,
    notes: tuple[str, ...] = (),
) -> Finalised:
    """Publish a finished round (``record``; ``None``: read it from the ledger), or the newer
    round that is published instead: the result is always the study's newest published round.

    Monotone: the compare-and-set of the published round (:meth:`Ledger.publish`) runs under
    the store's symbol lock before any file is written, so the store files follow it; the
    study attrs and pictures are written after it and checked against it afterwards, and a
    round overtaken meanwhile is followed by publishing the newer one (idempotent).
    """
    said = list(notes)
    for _ in range(100):  # each pass moves to a newer round, or returns
        if record is None:
            record = _round_record(ledger, key, round_key, ctx)
        done, newer = _publish_round(study, ctx, ledger, key, round_key, record, store, publish)
        if done is not None:
            return dataclasses.replace(done, scored_here=scored_here, notes=(*said, *done.notes))
        assert newer is not None
        if not said:
            said.append(
                f"{ctx.name}: the round chosen from {_trials_of(record)} complete trials "
                f"(trial {record.metadata.trial_number}) was not published: a newer round "
                f"(chosen from {newer.complete_trials} complete trials, trial "
                f"{newer.trial_number}) is published; the store and the study's winner keep it"
            )
        round_key, record = newer.round_key, None
    raise StudyError(f"the published round of {ctx.name} kept changing; export again")


def _trials_of(record: Record) -> int:
    """The complete trials a record's round was chosen from (0 when an old record lacks it)."""
    return record.metadata.complete_trials or 0


def _round_record(ledger: Ledger, key: str, round_key: str, ctx: StudyContext) -> Record:
    for done in ledger.rounds(key):
        if done.round_key == round_key:
            return Record.from_json(done.result, f"the finalisation row of {ctx.name}")
    raise StudyError(f"the published round of {ctx.name} has no finished row; export again")


def _publish_round(
    study: optuna.Study,
    ctx: StudyContext,
    ledger: Ledger,
    key: str,
    round_key: str,
    record: Record,
    store: Path,
    publish: Publish | None,
) -> tuple[Finalised | None, Publication | None]:
    """Everything derived from a finished round, idempotent: attrs, store, note.

    The study's own record is always written; the live record and ``best/`` as
    :func:`storage.store.write_record` allows (``publish``). Returns ``(None, newer)`` when a
    newer round is published: refused before anything was written, or published while this
    one was writing its attrs (the caller then publishes ``newer``).
    """
    refused: list[Publication] = []

    def guard() -> str | None:
        newer = ledger.publish(key, round_key, _trials_of(record), record.metadata.trial_number)
        if newer is None:
            return None
        refused.append(newer)
        return "a newer round is published"

    published = as_published(study, record)  # the study's trial count now (the files only)
    written = write_record(store, published, publish, guard)
    if not written.published:
        return None, refused[0]
    _mirror_test_scores(study, ledger, key)
    assert written.study_path is not None
    for attr, value in (
        ("export_path", str(written.study_path.resolve())),
        ("store", str(Path(store).resolve())),  # where status looks for the live record
    ):
        if study.user_attrs.get(attr) != value:
            study.set_user_attr(attr, value)
    confirmation = _confirmation(record).to_json()
    if study.user_attrs.get("confirmation") != confirmation:
        study.set_user_attr("confirmation", confirmation)
    summary = winner_summary(record)
    if study.user_attrs.get("winner") != summary:
        study.set_user_attr("winner", summary)
    png = render(record)
    picture = write_picture(
        store, ctx.model, ctx.symbol, png, study_name=record.metadata.study_name
    )
    if written.live:
        write_picture(store, ctx.model, ctx.symbol, png)
    _attach(study, record, picture, Path(store))
    shown = written.path if written.live else written.study_path
    _write_note(study, record, shown)
    latest = ledger.published(key)
    if latest is not None and latest.round_key != round_key:
        return None, latest  # overtaken while writing the attrs: they follow the newer round
    replaced = []
    stored = read_stored(store, "best", ctx.symbol) if written.best_replaced else None
    best = stored if isinstance(stored, Record) else None
    for what, old, new in (
        (str(written.path), written.replaced, record),
        (str(written.best_path), written.best_replaced, best),
    ):
        if not old or "foreign" in old or _same_winner(old, new):
            continue  # a replaced foreign file has its line in the notes
        if "unreadable" in old:
            replaced.append(f"{what}: replaced an unreadable file ({old['unreadable']})")
            continue
        replaced.append(
            f"{what}: replaced the {old.get('model', ctx.model)} record of study "
            f"{old.get('study_name')} trial {old.get('trial_number')} "
            f"(validation {old.get('objective', 'price_mae')} {old.get('validation')})"
        )
    finalised = Finalised(published, shown, True, replaced, notes=written.notes, live=written.live)
    return finalised, None


def _same_winner(old: Summary, new: Record | None) -> bool:
    """Whether a replaced record named the same study and trial as its replacement."""
    if new is None:
        return False
    return (old.get("model"), old.get("study_name"), old.get("trial_number")) == (
        new.model,
        new.metadata.study_name,
        new.metadata.trial_number,
    )


def _confirmation(record: Record) -> Selection:
    """The record's ``metadata.selection`` (every record finalised here has one)."""
    if record.metadata.selection is None:
        raise StudyError(f"the record of {record.metadata.study_name} has no metadata.selection")
    return record.metadata.selection


def artifact_folder(store: Path) -> Path:
    """Where optuna-dashboard artifacts (the winners' pictures) live: ``<store>/.artifacts``."""
    return Path(store).resolve() / ".artifacts"


#: how optuna-dashboard finds a trial's artifacts in the study's system attrs (its documented
#: layout for artifacts of finished trials, which Optuna's upload_artifact cannot touch)
TRIAL_ARTIFACT_PREFIX = "dashboard:artifacts:{trial_id}:"


def _attach(study: optuna.Study, record: Record, picture: Path, store: Path) -> None:
    """Attach the picture to the winning trial in optuna-dashboard (once per trial)."""
    from optuna.artifacts import FileSystemArtifactStore

    from storage.optuna_internals import (
        set_study_system_attr,
        study_system_attrs,
        trial_id_of_number,
    )

    trial_id = trial_id_of_number(study, record.metadata.trial_number)
    prefix = TRIAL_ARTIFACT_PREFIX.format(trial_id=trial_id)
    attrs = study_system_attrs(study)
    if any(k.startswith(prefix) and picture.name in str(v) for k, v in attrs.items()):
        return
    folder = artifact_folder(store)
    folder.mkdir(parents=True, exist_ok=True)
    artifact_id = str(uuid.uuid4())
    with open(picture, "rb") as handle:
        FileSystemArtifactStore(str(folder)).write(artifact_id, handle)
    meta = {"artifact_id": artifact_id, "filename": picture.name, "mimetype": "image/png",
            "encoding": None}  # fmt: skip
    set_study_system_attr(study, prefix + artifact_id, json.dumps(meta))
    if study.user_attrs.get("artifact_store") != str(folder):
        study.set_user_attr("artifact_store", str(folder))


def winner_summary(record: Record) -> dict[str, JSONValue]:
    """What ``status`` shows of the exported winner (a study attr, read without the store)."""
    meta = record.metadata
    summary: dict[str, JSONValue] = {
        "study_name": meta.study_name,
        "trial_number": meta.trial_number,
        "objective": record.objective,
        "validation": record.validation.to_json(),
        "test": record.test.to_json(),
        "confirmed_price_mae_se": _confirmation(record).confirmed_price_mae_se,
        "confirmed_se": _confirmed_se(record),
    }
    if meta.warnings:  # impossible forecasts (absent when none: older attrs stay as they are)
        summary["warnings"] = list(meta.warnings)
    summary.update(summary_of(record))  # --select exported the default
    return summary


def _confirmed_se(record: Record) -> float | None:
    """The Monte-Carlo standard error of the confirmed objective, from the candidates."""
    metric = record.objective
    if exported_default(record):  # --select: the default's first pass, not a confirmed mean
        return None
    for candidate in _confirmation(record).candidates:
        if candidate.get("trial_number") == record.metadata.trial_number:
            value = candidate.get(f"confirmed_{metric}_se")
            return float(value) if isinstance(value, (int, float)) else None
    return None


def _mirror_test_scores(study: optuna.Study, ledger: Ledger, key: str) -> None:
    """Set ``test_scores`` from this incarnation's finished rounds (no lost updates), oldest
    round first: by the complete trials each was chosen from, then in the order the database
    finished them (a late finaliser's older round comes before the newer one)."""
    scores = []
    finished = [
        (done, Record.from_json(done.result, f"the finalisation row of {key}"))
        for done in ledger.rounds(key)
    ]
    for done, record in sorted(finished, key=lambda pair: _trials_of(pair[1])):
        test = record.test
        scores.append(
            {
                "trial_number": record.metadata.trial_number,
                "round": done.round_key,
                "price_mae": test.price_mae,
                "return_mae": test.return_mae,
                "latency_s": test.latency_s,
                "naive_price_mae": test.naive_price_mae,
                "skill": test.skill,
                "beats_naive": test.beats_naive,
                "scored_at": record.metadata.created_at,
            }
        )
    if study.user_attrs.get("test_scores") != scores:
        study.set_user_attr("test_scores", scores)


def _write_note(study: optuna.Study, record: Record, path: Path) -> None:
    from optuna_dashboard import save_note

    test, validation, meta = record.test, record.validation, record.metadata
    selection = _confirmation(record)
    metric = record.objective
    rows = "\n".join(
        f"| {c['trial_number']} | `{json.dumps(c['config'])}` "
        f"| {c['first_pass_' + metric]:.6g} "
        f"| {c['confirmed_' + metric]:.6g} ± {c['confirmed_' + metric + '_se']:.2g} |"
        for c in selection.candidates
    )
    warning = (
        ""
        if validation.beats_naive
        else "\n**Warning: this winner does not beat the naive (last close) forecast on "
        "validation.**\n"
    )
    save_note(
        study,
        f"## Finalised: trial {meta.trial_number}\n{warning}\n"
        f"| window | price MAE | return MAE | naive price MAE | skill | beats naive | latency s |\n"
        f"| --- | --- | --- | --- | --- | --- | --- |\n"
        f"| validation (confirmed) | {validation.price_mae:.6g} "
        f"± {selection.confirmed_price_mae_se:.2g} | {validation.return_mae:.6g} "
        f"| {validation.naive_price_mae:.6g} | {validation.skill:.4f} "
        f"| {validation.beats_naive} | {validation.latency_s:.4g} |\n"
        f"| test (once) | {test.price_mae:.6g} | {test.return_mae:.6g} "
        f"| {test.naive_price_mae:.6g} | {test.skill:.4f} | {test.beats_naive} "
        f"| {test.latency_s:.4g} |\n\n"
        f"{_paired_note(record)}"
        f"### Confirmation ({len(selection.seeds)} fresh seed sets)\n\n"
        f"| trial | config | first pass | confirmed mean ± SE |\n| --- | --- | --- | --- |\n"
        f"{rows}\n\n"
        f"Config: `{json.dumps(record.config)}`\n\n"
        f"Exported to `{path.resolve()}` at {meta.created_at}.\n",
    )


def _paired_note(record: Record) -> str:
    """The note's table of paired tests (absent from records made before them)."""
    cells = []
    for window, scores in (("validation (first pass)", record.validation), ("test", record.test)):
        for against, paired in (("naive", scores.vs_naive), ("trading default", scores.vs_default)):
            if paired is not None:
                cells.append(
                    f"| {window} | {against} | {_fmt(paired.mae_ratio, '.4f')} "
                    f"| {_fmt(paired.dm_stat, '.3f')} | {paired.p_value:.3g} |"
                )
    if not cells:
        return ""
    tests = (record.test.vs_naive, record.test.vs_default, record.validation.vs_naive,
             record.validation.vs_default)  # fmt: skip
    method = next(t.method for t in tests if t is not None)
    edge = record.test.vs_naive
    warning = (
        f"\n**Warning: the test edge over naive is not significant at {ALPHA:.0%} "
        f"(p {edge.p_value:.3g}).**\n"
        if edge is not None and not edge.significant_edge(ALPHA)
        else ""
    )
    return (
        f"### Paired tests ({method}; per-target {record.objective})\n"
        f"{warning}\n"
        f"| window | against | loss ratio | DM stat | p-value |\n| --- | --- | --- | --- | --- |\n"
        + "\n".join(cells)
        + "\n\n"
    )


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _iso(stamp: Any) -> str:
    return str(stamp.astype("datetime64[s]")) + "Z"


def _lease_keeper(ledger: Ledger, key: str, round_key: str, owner: str, lease_s: float) -> Periodic:
    """Renews a finalisation lease every quarter of it while its holder works."""

    def renew() -> bool:
        if ledger.renew(key, round_key, owner, lease_s):
            return True
        logger.info("finalisation lease of %s was lost", key)  # the main thread says what next
        return False

    return Periodic(f"renewing the finalisation lease of {key}", max(lease_s / 4, 0.5), renew)
