"""What optuna-dashboard shows of a finalised round: the note and the winner's picture."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import optuna

from objectives.significance import ALPHA
from objectives.units import UNITS
from storage.record import Record
from studies import attrs as keys
from studies.attrs import selection_of
from studies.resilient import Retry

#: how optuna-dashboard finds a trial's artifacts in the study's system attrs (its documented
#: layout for artifacts of finished trials, which Optuna's upload_artifact cannot touch)
TRIAL_ARTIFACT_PREFIX = "dashboard:artifacts:{trial_id}:"


def artifact_folder(store: Path) -> Path:
    """Where optuna-dashboard artifacts (the winners' pictures) live: ``<store>/.artifacts``."""
    return Path(store).resolve() / ".artifacts"


def attach(
    study: optuna.Study, record: Record, picture: Path, store: Path, retry: Retry | None = None
) -> None:
    """Attach the picture to the winning trial in optuna-dashboard (once per trial).
    ``retry``: how its storage calls wait out a database outage (each is retried alone, so a
    retry never writes a second artifact file)."""
    from optuna.artifacts import FileSystemArtifactStore

    from storage.optuna_internals import (
        set_study_system_attr,
        study_system_attrs,
        trial_id_of_number,
    )

    retry = retry or Retry()
    trial_id = retry(lambda: trial_id_of_number(study, record.metadata.trial_number))
    prefix = TRIAL_ARTIFACT_PREFIX.format(trial_id=trial_id)
    attrs = retry(lambda: study_system_attrs(study))
    if any(k.startswith(prefix) and picture.name in str(v) for k, v in attrs.items()):
        return
    folder = artifact_folder(store)
    folder.mkdir(parents=True, exist_ok=True)
    artifact_id = str(uuid.uuid4())
    with open(picture, "rb") as handle:
        FileSystemArtifactStore(str(folder)).write(artifact_id, handle)
    meta = {"artifact_id": artifact_id, "filename": picture.name, "mimetype": "image/png",
            "encoding": None}  # fmt: skip
    retry(lambda: set_study_system_attr(study, prefix + artifact_id, json.dumps(meta)))  # upsert
    retry(lambda: keys.set_if_changed(study, keys.ARTIFACT_STORE, str(folder)))


def write_note(study: optuna.Study, record: Record, path: Path) -> None:
    """The study's dashboard note: the scores, paired tests, confirmation and where it went."""
    from optuna_dashboard import save_note

    test, validation, meta = record.test, record.validation, record.metadata
    selection = selection_of(record)
    metric = record.objective
    rows = "\n".join(
        f"| {c['trial_number']} | `{json.dumps(c['config'])}` "
        f"| {c['first_pass_' + metric]:.5g} "
        f"| {c['confirmed_' + metric]:.5g} ± {c['confirmed_' + metric + '_se']:.2g} |"
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
        f"| window | price MAE (price units) | return MAE (fraction of the price) "
        f"| naive price MAE (price units) | price skill | beats naive | latency s |\n"
        f"| --- | --- | --- | --- | --- | --- | --- |\n"
        f"| validation (confirmed) | {validation.price_mae:.5g} "
        f"± {selection.confirmed_price_mae_se:.2g} | {validation.return_mae:.5g} "
        f"| {validation.naive_price_mae:.5g} | {validation.skill:.4f} "
        f"| {validation.beats_naive} | {validation.latency_s:.4g} |\n"
        f"| test (once) | {test.price_mae:.5g} | {test.return_mae:.5g} "
        f"| {test.naive_price_mae:.5g} | {test.skill:.4f} | {test.beats_naive} "
        f"| {test.latency_s:.4g} |\n\n"
        f"{paired_note(record)}"
        f"### Confirmation ({len(selection.seeds)} fresh seed sets)\n\n"
        f"| trial | config | first pass {metric} | confirmed mean ± SE ({UNITS.get(metric, '')}) "
        f"|\n| --- | --- | --- | --- |\n"
        f"{rows}\n\n"
        f"Config: `{json.dumps(record.config)}`\n\n"
        f"Exported to `{path.resolve()}` at {meta.created_at}.\n",
    )


def paired_note(record: Record) -> str:
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
