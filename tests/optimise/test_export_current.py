"""Small honesties: a ``--seed`` an existing study does not take is said once; a study resumed
to more trials with the same winner is published with its new count and ``updated_at``; an
``export`` whose record is current loads and rewrites nothing unless ``--force`` (and says so
in one line); each line of a report prints once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import objectives.evaluator
import optimise.setup
from optimise.commands import _report
from storage.record import Record
from studies.finalise import Finalised
from tests.conftest import run_cli

NAME = "fake:AAPL:v20-t20-h1:trading"
CHEAP = ["--confirm-candidates", 1, "--confirm-draws", 2, "--no-default-comparison"]
SEED = "keeps its seed"


def launch(data: Path, n: int, *extra: object) -> int:
    return run_cli("launch", "--model", "fake", "--symbols", "AAPL", "--data-dir", data,
                   "--n-trials", n, "--no-progress", *CHEAP, *extra)  # fmt: skip


def export(*extra: object) -> int:
    return run_cli("export", "--model", "fake", "--symbols", "AAPL", *CHEAP, *extra)


def files(store: Path) -> dict[Path, tuple[bytes, int]]:
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in store.rglob("*") if p.is_file()}


def test_resume_seed_and_current_records(
    workdir: Path,
    sample_data: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = workdir / "store"
    assert launch(sample_data, 2) == 0
    first = Record.from_json((store / "fake/AAPL.json").read_bytes())
    assert (first.metadata.complete_trials, first.metadata.updated_at) == (2, None)

    # resumed to 4 with another --seed: one warning line; the same winner (the known-good
    # trial 0 is the naive forecast, which the fake's noisy trials do not beat), so the same
    # round, published with the new count and when the newest trial finished
    capsys.readouterr()
    assert launch(sample_data, 4, "--seed", 7) == 0
    err = capsys.readouterr().err
    assert err.count(SEED) == 1 and "--seed 7 is not used" in err
    record = Record.from_json((store / "fake/AAPL.json").read_bytes())
    assert record.metadata.trial_number == first.metadata.trial_number == 0
    assert record.metadata.complete_trials == 4
    assert record.metadata.created_at == first.metadata.created_at  # not scored again
    assert record.metadata.updated_at is not None
    assert record.metadata.updated_at >= record.metadata.created_at
    assert launch(sample_data, 4) == 0  # no --seed given: nothing to say
    assert SEED not in capsys.readouterr().err

    # export of a current record: one line, no model loaded, no file touched
    def no_model(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was loaded")

    with monkeypatch.context() as patch:
        patch.setattr(optimise.setup, "load_backend", no_model)
        patch.setattr(objectives.evaluator, "load_backend", no_model)
        before = files(store)
        assert export("--seed", 7) == 0
        out, err = capsys.readouterr()
        said = [line for line in out.splitlines() if "record is current" in line]
        assert said == [
            f"{NAME}: record is current (trial 0, 4 complete trials: store/fake/AAPL.json); "
            "nothing rewritten (--force publishes it again)"
        ]
        assert err.count(SEED) == 1 and "does not beat the naive forecast" in err
        assert run_cli("export", "--model", "fake", "--all", *CHEAP) == 0
        assert "record is current" in capsys.readouterr().out
        assert files(store) == before

    # --force publishes again (same bytes: nothing changes); a missing picture is not current
    assert export("--force") == 0
    assert "record is current" not in capsys.readouterr().out
    assert {p: data for p, (data, _) in files(store).items()} == {
        p: data for p, (data, _) in before.items()
    }
    picture = store / "fake/studies/fake_AAPL_v20-t20-h1_trading.png"
    picture.unlink()
    assert export() == 0
    assert "record is current" not in capsys.readouterr().out and picture.exists()
    assert json.loads((store / "fake/AAPL.json").read_text())["metadata"]["complete_trials"] == 4


def test_each_line_of_a_report_prints_once(
    workdir: Path, sample_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert launch(sample_data, 1) == 0
    record = Record.from_json((workdir / "store/fake/AAPL.json").read_bytes())
    capsys.readouterr()
    note = "store/best/AAPL.json: left as it is"
    _report(Finalised(record, workdir, False, [note], notes=(note, note)))
    out, err = capsys.readouterr()
    assert out.splitlines() == [note]
    assert err.count("does not beat the naive forecast") == 1
