"""Finalisation's output is pinned byte for byte: a seeded fake-backend study, finalised twice
(4 then 7 complete trials) over unreadable store files, writes the records, attrs, note and
lines of ``tests/fixtures/finalise_snapshot.json``, made with the code before
``studies/finalise.py`` was split by job (the dashboard note since given its units and 5
significant digits, issue 22). Only what depends on the clock or the host is masked (creation
times, latency measurements, the study nonce, the working folder), and floats are compared to
within a relative 1e-9: the last bits of a statistic follow the host's numpy/BLAS summation
order (a fresh install moved the DM statistic's last two digits), not the code's choices."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from optuna_dashboard._note import get_note_from_system_attrs

from objectives.bars import load_bars
from objectives.evaluator import load_backend
from objectives.tasks import TRADING
from objectives.windows import WindowSpec
from storage.database import Database
from storage.optuna_internals import study_system_attrs
from studies.context import StudyContext
from studies.finalise import Finalised, finalise
from studies.open import open_study
from studies.worker import WorkerSettings, run_study

SNAPSHOT = Path(__file__).resolve().parents[1] / "fixtures" / "finalise_snapshot.json"
#: keys whose values depend on the clock or the run, not on the code's choices
VOLATILE = {"created_at", "scored_at", "updated_at", "latency_s", "latency", "study_uid"}


def masked(value: Any, workdir: str) -> Any:
    """``value`` with the volatile keys' values and the working folder replaced."""
    if isinstance(value, dict):
        return {k: "<masked>" if k in VOLATILE else masked(v, workdir) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v, workdir) for v in value]
    if isinstance(value, str):
        return value.replace(workdir, "<workdir>")
    return value


def floats_close(got: Any, want: Any, path: str = "$") -> list[str]:
    """Where ``got`` and ``want`` differ: floats beyond a relative 1e-9, anything else at all."""
    if isinstance(want, float) and isinstance(got, float):
        return [] if math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12) else [path]
    if isinstance(want, dict) and isinstance(got, dict):
        if got.keys() != want.keys():
            return [f"{path} keys {sorted(got.keys() ^ want.keys())}"]
        return [d for k in want for d in floats_close(got[k], want[k], f"{path}.{k}")]
    if isinstance(want, list) and isinstance(got, list):
        if len(got) != len(want):
            return [f"{path} length {len(got)} != {len(want)}"]
        return [
            d
            for i, (g, w) in enumerate(zip(got, want, strict=True))
            for d in floats_close(g, w, f"{path}[{i}]")
        ]
    return [] if got == want and type(got) is type(want) else [path]


def note_masked(note: str, record: dict[str, Any], workdir: str) -> str:
    """The dashboard note with the record's latencies and creation time replaced."""
    for window in ("validation", "test"):
        note = note.replace(f"| {record[window]['latency_s']:.4g} |", "| <latency> |")
    return note.replace(record["metadata"]["created_at"], "<created_at>").replace(
        workdir, "<workdir>"
    )


def snapshot(workdir: Path, sample_data: Path) -> dict[str, Any]:
    """Every output of two finalisations of one seeded study, masked."""
    ctx = StudyContext(load_backend("fake"), load_bars(sample_data, "AAPL"), WindowSpec(),
                       task=TRADING)  # fmt: skip
    db = Database.open("sqlite:///studies.db")
    study = open_study(db.optuna, ctx)
    store, where = workdir / "store", str(workdir.resolve())
    for folder in ("fake", "best"):  # unreadable files, for the "replaced" lines
        (store / folder).mkdir(parents=True)
        (store / folder / "AAPL.json").write_text("{")
    rounds = []
    for trials in (4, 7):
        run_study(study, ctx, db.ledger, trials, WorkerSettings(progress=False))
        done: Finalised = finalise(study, ctx, db.ledger, store, db.label)
        record = done.record.to_json()
        note = get_note_from_system_attrs(study_system_attrs(study), None)["body"]
        files = {
            str(path.relative_to(store)): masked(json.loads(path.read_text()), where)
            for path in sorted(store.rglob("*.json"))
            if ".locks" not in path.parts
        }
        kept = ("winner", "confirmation", "test_scores", "export_path", "store")
        attrs = {k: v for k, v in study.user_attrs.items() if k in kept}
        rounds.append(
            {
                "path": str(done.path.relative_to(workdir)),
                "scored_here": done.scored_here,
                "replaced": masked(done.replaced, where),
                "notes": masked(list(done.notes), where),
                "live": done.live,
                "files": files,
                "attrs": masked(attrs, where),
                "note": note_masked(note, record, where),
            }
        )
    return {"rounds": rounds}


def test_finalisation_writes_what_it_wrote_before_the_split(workdir: Path, sample_data: Path):
    got = json.loads(json.dumps(snapshot(workdir, sample_data)))
    assert floats_close(got, json.loads(SNAPSHOT.read_text())) == []


def test_the_comparison_tells_a_changed_number_from_a_last_bit():
    want = {"a": [1.0, "x", 2], "b": -3.8734061962870205}
    assert floats_close({"a": [1.0, "x", 2], "b": -3.8734061962870200}, want) == []
    assert floats_close({"a": [1.0, "x", 2], "b": -3.87341}, want) == ["$.b"]
    assert floats_close({"a": [1.0, "y", 2], "b": -3.8734061962870205}, want) == ["$.a[1]"]
    assert floats_close({"a": [1.0, "x", 2.0], "b": -3.8734061962870205}, want) == ["$.a[2]"]
