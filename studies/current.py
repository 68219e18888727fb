"""Whether a study's exported record is current, decided without loading its model.

``optimise export`` of a study whose record is already right (say, the second export in a row)
used to load the model, time the winner's latency and draw its picture again to find that
nothing changed: minutes for a real checkpoint. A study's record is *current* when

* its data is the data the study used (the same fingerprint of the same rows),
* its current candidates form the round the ledger has finished and published,
* the store files publishing would write are there with those bytes: the study's own record
  and picture, and, where the study's record is the live one, the live record, its picture and
  ``best/``, and
* the study's attrs name that record and store (a publication to another store is not
  current), its confirmation and test scores follow the ledger, the winning trial has the
  picture attached and the dashboard note names the record.

Then publishing would rewrite nothing, and :func:`current` returns what it would have
returned; otherwise ``None`` and the caller finalises as usual.
"""

from __future__ import annotations

from pathlib import Path

import optuna

from objectives.bars import Bars
from objectives.exceptions import DataError
from objectives.windows import WindowSpec, split
from storage.exceptions import StorageError
from storage.files import serialise
from storage.ledger import Ledger
from storage.record import Record
from storage.store import (
    Publish,
    live_verdict,
    picture_path,
    read_stored,
    record_path,
    study_record_path,
)
from studies.attrs import WINNER, StudyAttrs, winner_summary
from studies.confirm import candidates
from studies.finalise import FinaliseSettings, _round_key
from studies.publish import Finalised
from studies.recount import as_published


def current(
    study: optuna.Study,
    ledger: Ledger,
    store: str,
    bars: Bars,
    settings: FinaliseSettings,
) -> Finalised | None:
    """What publishing ``study`` would return when its record is current, else ``None``
    (only for a plain publication: not with ``--promote`` or ``--replace-foreign``). Reads
    only, so it is retried as a whole through a database outage (``settings.retry``)."""
    return settings.retry(lambda: _current(study, ledger, store, bars, settings))


def _current(
    study: optuna.Study,
    ledger: Ledger,
    store: str,
    bars: Bars,
    settings: FinaliseSettings,
) -> Finalised | None:
    attrs = StudyAttrs.of(study)
    uid, windows = attrs.uid, attrs.windows
    if not uid or windows is None:
        return None
    try:
        rows = split(len(bars), WindowSpec(**windows)).test_end
    except (DataError, TypeError):
        return None
    fingerprint = bars.fingerprint(rows)
    if fingerprint != attrs.data_fingerprint:
        return None
    chosen = candidates(study, settings.candidates)
    if not chosen:
        return None
    key = f"{study.study_name}#{uid}#{fingerprint}"  # studies.finalise.study_key
    round_key = _round_key(chosen, settings)
    published = ledger.published(key)
    if published is None or published.round_key != round_key:
        return None
    result = next((r.result for r in ledger.rounds(key) if r.round_key == round_key), None)
    if result is None:
        return None
    try:
        record = as_published(study, Record.from_json(result))
    except StorageError:
        return None
    root = Path(store)
    own = study_record_path(root, record.model, record.metadata.study_name)
    if attrs.export_path != str(own.resolve()) or attrs.store != str(root.resolve()):
        return None
    if attrs.attrs.get(WINNER) != winner_summary(record) or not _holds(own, record):
        return None
    if not own.with_suffix(".png").exists():
        return None
    if not _attrs_follow(study, ledger, key, record):
        return None
    live_path = record_path(root, record.model, record.symbol)
    try:
        live = read_stored(root, record.model, record.symbol)
    except StorageError:
        return None  # publishing would heal an unreadable live file
    if live is None:
        return None
    is_live = isinstance(live, Record) and (
        live.metadata.study_name == record.metadata.study_name
        and live.metadata.study_uid == record.metadata.study_uid
    )
    if is_live:
        if not _holds(live_path, record):
            return None
        if not picture_path(root, record.model, record.symbol).exists():
            return None
        if not record_path(root, "best", record.symbol).exists():
            return None
    elif live_verdict(record, live, Publish()) is None:
        return None  # publishing would make this study's record live
    shown = live_path if is_live else own
    if f"Exported to `{shown.resolve()}` at {record.metadata.created_at}." not in _note(study):
        return None  # the dashboard note names another record or place
    return Finalised(record, shown, False, [], live=is_live)


def _attrs_follow(study: optuna.Study, ledger: Ledger, key: str, record: Record) -> bool:
    """Whether the study's attrs were published from this record: the confirmation, the test
    scores of every finished round, the picture attached to the winning trial."""
    from storage.optuna_internals import study_system_attrs, trial_id_of_number
    from studies.note import TRIAL_ARTIFACT_PREFIX

    attrs = StudyAttrs.of(study)
    selection = record.metadata.selection
    if selection is None or attrs.confirmation != selection.to_json():
        return False
    scores = attrs.test_scores
    if {s.get("round") for s in scores} != {r.round_key for r in ledger.rounds(key)}:
        return False
    prefix = TRIAL_ARTIFACT_PREFIX.format(
        trial_id=trial_id_of_number(study, record.metadata.trial_number)
    )
    picture = study_record_path(Path("."), record.model, record.metadata.study_name)
    return any(
        k.startswith(prefix) and picture.with_suffix(".png").name in str(v)
        for k, v in study_system_attrs(study).items()
    )


def _note(study: optuna.Study) -> str:
    from optuna_dashboard import get_note

    try:
        return str(get_note(study))
    except Exception:  # noqa: BLE001 - an unreadable note is simply not current
        return ""


def _holds(path: Path, record: Record) -> bool:
    """Whether the file at ``path`` holds exactly the bytes publishing ``record`` writes."""
    try:
        return path.read_bytes() == serialise(record.to_json())
    except OSError:
        return False
