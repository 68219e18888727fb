"""Finalisation, exactly once per (study, best trial): score the test window, record, export.

Workers race for a claim row in the ledger (a conditional UPDATE with a lease on the database
clock); the winner scores the best trial's settings once on the test window, stores the result
in the claim row, mirrors every scoring into the study's ``test_scores`` attr, writes the store
and the dashboard note. Everyone else waits for the result and only makes sure the store holds
it. Test scores are never read for selection: the best trial is chosen on validation alone.
"""

from __future__ import annotations

import datetime
import json
import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from objectives.evaluator import evaluate, trial_seed
from storage.ledger import Ledger
from storage.store import read_record, record_path, write_record
from storage.urls import redact
from studies.context import StudyContext
from studies.exceptions import StudyError
from studies.owners import this_worker

logger = logging.getLogger(__name__)

LEASE_S = 600.0
WAIT_S = 900.0


@dataclass(frozen=True)
class Finalised:
    """The exported record, where it was written, and whether this call scored the test."""

    record: dict[str, Any]
    path: Path
    scored_here: bool


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The complete trial with the lowest validation objective (first one on ties)."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return None
    return min(complete, key=lambda t: (t.value, t.number))


def finalise(
    study: optuna.Study, ctx: StudyContext, ledger: Ledger, store: Path, storage_url: str
) -> Finalised:
    """Make sure the current best trial is test-scored exactly once and exported."""
    best = best_trial(study)
    if best is None:
        raise StudyError(f"study {ctx.name} has no complete trial to export yet")
    owner = f"{this_worker()}:{uuid.uuid4().hex[:8]}"
    deadline = time.monotonic() + WAIT_S
    while True:
        claim = ledger.claim(ctx.name, best.number, owner, LEASE_S)
        if claim.state == "won":
            try:
                record = _score(study, ctx, best, storage_url)
                if not ledger.complete(ctx.name, best.number, owner, json.dumps(record)):
                    raise StudyError(f"lost the finalisation lease of {ctx.name}; export again")
            except BaseException:
                ledger.release(ctx.name, best.number, owner)
                raise
            _mirror_test_scores(study, ledger)
            path = _export(study, store, record, ctx)
            _write_note(study, record, path)
            return Finalised(record, path, scored_here=True)
        if claim.state == "done":
            assert claim.result is not None
            record = json.loads(claim.result)
            return Finalised(record, _export(study, store, record, ctx), scored_here=False)
        if time.monotonic() > deadline:
            raise StudyError(f"another worker holds the finalisation of {ctx.name}; try later")
        time.sleep(0.5)


def _score(
    study: optuna.Study, ctx: StudyContext, best: FrozenTrial, storage_url: str
) -> dict[str, Any]:
    config = ctx.backend.space.config_from_params(best.params)
    seed = trial_seed(ctx.seed, best.number)
    test = evaluate(ctx.test_evaluator, ctx.bars, ctx.windows.test, config, seed)
    attrs = best.user_attrs
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    validation_naive = float(attrs.get("naive_price_mae", float("nan")))
    return {
        "symbol": ctx.symbol,
        "model": ctx.model,
        "config": {"name": f"{ctx.model}_optuna_trial{best.number}", **config},
        "validation": {
            "price_mae": float(attrs.get("price_mae", best.value)),
            "return_mae": float(attrs.get("return_mae", float("nan"))),
            "latency_s": float(attrs.get("latency_s", float("nan"))),
        },
        "test": {
            "price_mae": test.price_mae,
            "return_mae": test.return_mae,
            "latency_s": test.latency_s,
        },
        "windows": {
            "val_window": ctx.spec.val_window,
            "test_window": ctx.spec.test_window,
            "forecast_horizon": ctx.spec.horizon,
        },
        "metadata": {
            "source": "optimise (optuna)",
            "study_name": ctx.name,
            "trial_number": best.number,
            "objective": ctx.metric,
            "objective_value": best.value,
            "storage": redact(storage_url),
            "data_fingerprint": ctx.fingerprint,
            "checkpoint": ctx.backend.checkpoint_id,
            "seed": seed,
            "min_context": ctx.spec.min_context,
            "validation_naive_price_mae": validation_naive,
            "validation_skill": float(attrs.get("skill", float("nan"))),
            "test_naive_price_mae": test.naive_price_mae,
            "test_skill": test.skill,
            "complete_trials": len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))),
            "validation_end": _iso(ctx.bars.timestamps[ctx.windows.validation[-1]]),
            "test_end": _iso(ctx.bars.timestamps[ctx.windows.test[-1]]),
            "created_at": now,
        },
    }


def _mirror_test_scores(study: optuna.Study, ledger: Ledger) -> None:
    """Set ``test_scores`` from the ledger's finished rows (idempotent, no lost updates)."""
    scores = []
    for number, text in sorted(ledger.results(study.study_name).items()):
        record = json.loads(text)
        scores.append(
            {
                "trial_number": number,
                **{k: record["test"][k] for k in ("price_mae", "return_mae", "latency_s")},
                "naive_price_mae": record["metadata"]["test_naive_price_mae"],
                "scored_at": record["metadata"]["created_at"],
            }
        )
    study.set_user_attr("test_scores", scores)


def _export(study: optuna.Study, store: Path, record: dict[str, Any], ctx: StudyContext) -> Path:
    """Write the record unless the store already holds exactly it; remember where."""
    if read_record(store, ctx.model, ctx.symbol) == record:
        path = record_path(store, ctx.model, ctx.symbol)
    else:
        path = write_record(store, record)
    location = str(path.resolve())
    if study.user_attrs.get("export_path") != location:
        study.set_user_attr("export_path", location)
    return path


def _write_note(study: optuna.Study, record: dict[str, Any], path: Path) -> None:
    from optuna_dashboard import save_note

    test, validation, meta = record["test"], record["validation"], record["metadata"]
    save_note(
        study,
        f"## Finalised: trial {meta['trial_number']}\n\n"
        f"| window | price MAE | return MAE | naive price MAE | skill |\n"
        f"| --- | --- | --- | --- | --- |\n"
        f"| validation | {validation['price_mae']:.6g} | {validation['return_mae']:.6g} "
        f"| {meta['validation_naive_price_mae']:.6g} | {meta['validation_skill']:.4f} |\n"
        f"| test | {test['price_mae']:.6g} | {test['return_mae']:.6g} "
        f"| {meta['test_naive_price_mae']:.6g} | {meta['test_skill']:.4f} |\n\n"
        f"Config: `{json.dumps(record['config'])}`\n\n"
        f"Exported to `{path.resolve()}` at {meta['created_at']}.\n",
    )


def _iso(stamp: Any) -> str:
    return str(stamp.astype("datetime64[s]")) + "Z"
