"""The leaderboard (``export --top N``, ``status --top N``): ranking (confirmed first, then
first pass), dedupe, direction, the three formats, read-only, and bad input."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial, TrialState

from objectives.bars import load_bars
from objectives.evaluator import load_backend
from objectives.metrics import METRIC_NAMES
from objectives.windows import WindowSpec
from optimise.leaderboard import CONFIRMED, FIRST_PASS, confirmed_values, rank
from storage.database import Database
from studies.context import StudyContext
from studies.open import open_study
from studies.worker import WorkerSettings, run_study
from tests.conftest import SAMPLE_DATA, run_cli

LEVELS = "fake:AAPL:v20-t20-h1"  # price_mae, minimised, finalised, with duplicates
ACCURACY = "fake:AAPL:v20-t20-h1:trading:direction_accuracy"  # maximised, finalised
OPEN = "fake:AAPL:v30-t20-h1"  # never finalised
CANDIDATES = 3


@dataclass(frozen=True)
class Db:
    root: Path
    url: str
    store: Path


def _launch(db: Db, n: int, *extra: object, store: str = "levels") -> None:
    """``launch`` of the fake model on AAPL, exporting to ``<db.store>/<store>``."""
    args = ["launch", "--model", "fake", "--symbols", "AAPL", "--data-dir", SAMPLE_DATA]
    args += ["--n-trials", n, "--no-progress", "--storage", db.url, "--store", db.store / store]
    assert run_cli(*args, "--confirm-candidates", CANDIDATES, "--confirm-draws", 2, *extra) == 0


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Db]:
    """One database with the three studies above, made once."""
    root = tmp_path_factory.mktemp("leaderboard")
    made = Db(root, f"sqlite:///{root / 'studies.db'}", root / "store")
    _launch(made, 8, "--task", "levels")
    _launch(made, 5, "--metric", "direction_accuracy", store="accuracy")
    handle = Database.open(made.url)
    bars, settings = load_bars(SAMPLE_DATA, "AAPL"), WorkerSettings(progress=False)
    # TPE proposing the best and the worst settings again, after the finalisation
    levels = StudyContext(load_backend("fake"), bars, WindowSpec())
    study = open_study(handle.optuna, levels, storage_label=handle.label)
    complete = sorted(study.get_trials(states=(TrialState.COMPLETE,)), key=lambda t: t.value)
    for trial in (complete[0], complete[-1]):
        study.enqueue_trial(trial.params)
    run_study(study, levels, handle.ledger, 10, settings)
    # a study that was never finalised
    unfinished = StudyContext(load_backend("fake"), bars, WindowSpec(val_window=30))
    study = open_study(handle.optuna, unfinished, storage_label=handle.label)
    run_study(study, unfinished, handle.ledger, 4, settings)
    yield made


def leaderboard(capsys, *args: object) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        code = run_cli(*args)
    except SystemExit as exc:  # the parser's one-line error
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def boards(capsys, db: Db, *args: object) -> dict[str, dict]:
    code, out, _ = leaderboard(capsys, "status", "--storage", db.url, "--format", "json", *args)
    assert code == 0
    return {b["study"]: b for b in json.loads(out)["studies"]}


def record(db: Db, store: str = "levels") -> dict:
    """The exported record of the study launched with ``store``."""
    return json.loads((db.store / store / "fake" / "AAPL.json").read_text())


def test_confirmed_settings_come_first_then_the_first_pass(db, capsys):
    board = boards(capsys, db, "--top", "8")[LEVELS]
    rows = board["rows"]
    assert (board["direction"], board["objective"], board["finalised"]) == (
        "minimize", "price_mae", True,
    )  # fmt: skip
    assert [r["rank"] for r in rows] == list(range(1, 9))
    assert [r["ranked_by"] for r in rows] == [CONFIRMED] * CANDIDATES + [FIRST_PASS] * 5
    confirmed, first_pass = rows[:CANDIDATES], rows[CANDIDATES:]
    assert [r["value"] for r in confirmed] == sorted(r["confirmed"] for r in confirmed)
    assert [r["value"] for r in first_pass] == sorted(r["first_pass"] for r in first_pass)
    assert all(r["confirmed"] is None and r["confirmed_se"] is None for r in first_pass)
    # every confirmed candidate beats the rest on the first pass (that is how they were chosen)
    assert max(r["first_pass"] for r in confirmed) <= min(r["first_pass"] for r in first_pass)
    # rank 1 is the exported winner, with the record's numbers and config
    winner, exported = rows[0], record(db)
    assert winner["winner"] and not any(r["winner"] for r in rows[1:])
    assert winner["trial"] == exported["metadata"]["trial_number"]
    assert winner["confirmed"] == exported["validation"]["price_mae"]
    assert winner["latency_s"] == exported["validation"]["latency_s"]
    assert all(r["latency_s"] is None for r in rows[1:])
    assert winner["config"] == {k: v for k, v in exported["config"].items() if k != "name"}
    candidates = exported["metadata"]["selection"]["candidates"]
    assert {r["trial"] for r in confirmed} == {c["trial_number"] for c in candidates}
    # every metric the trial recorded, its naive values and skill; the trial's cost
    study = optuna.load_study(study_name=LEVELS, storage=db.url)
    for row in rows:
        attrs = study.trials[row["trial"]].user_attrs
        assert row["first_pass"] == study.trials[row["trial"]].value
        assert set(METRIC_NAMES) | {f"naive_{m}" for m in METRIC_NAMES} | {"skill"} == set(
            row["metrics"]
        )
        assert all(row["metrics"][k] == attrs[k] for k in row["metrics"])
        assert row["trial_cost_s"] == attrs["trial_cost_s"]
        assert row["config"] == attrs["config"]


def test_trials_with_the_same_settings_are_one_row(db, capsys):
    board = boards(capsys, db, "--top", "100")[LEVELS]
    rows = board["rows"]
    assert board["complete_trials"] == 10 and board["distinct_settings"] == 8 == len(rows)
    assert len({json.dumps(r["config"], sort_keys=True) for r in rows}) == len(rows)
    study = optuna.load_study(study_name=LEVELS, storage=db.url)
    copies = {t.user_attrs["duplicate_of"] for t in study.trials if "duplicate_of" in t.user_attrs}
    assert len(copies) == 2
    by_trial = {r["trial"]: r for r in rows}
    assert all(by_trial[n]["duplicates"] == 1 for n in copies)  # the original stands for both
    assert sum(r["duplicates"] for r in rows) == 2
    assert rows[0]["duplicates"] == 1  # the best was proposed again


def test_a_maximised_metric_ranks_the_highest_first(db, capsys):
    board = boards(capsys, db, "--top", "6", "--model", "fake")[ACCURACY]
    rows = board["rows"]
    assert board["direction"] == "maximize" and board["objective"] == "direction_accuracy"
    confirmed = [r for r in rows if r["ranked_by"] == CONFIRMED]
    first_pass = [r for r in rows if r["ranked_by"] == FIRST_PASS]
    assert len(confirmed) == CANDIDATES and rows[:CANDIDATES] == confirmed
    assert [r["value"] for r in confirmed] == sorted((r["value"] for r in confirmed), reverse=True)
    assert [r["value"] for r in first_pass] == sorted(
        (r["value"] for r in first_pass), reverse=True
    )
    assert min(r["first_pass"] for r in confirmed) >= max(r["first_pass"] for r in first_pass)
    assert rows[0]["trial"] == record(db, "accuracy")["metadata"]["trial_number"]


def test_a_study_not_finalised_is_ranked_by_the_first_pass_and_said_so(db, capsys):
    board = boards(capsys, db, "--top", "3")[OPEN]
    assert not board["finalised"] and board["complete_trials"] == 4
    assert [r["ranked_by"] for r in board["rows"]] == [FIRST_PASS] * 3
    assert [r["value"] for r in board["rows"]] == sorted(r["first_pass"] for r in board["rows"])
    code, out, err = leaderboard(
        capsys, "export", "--model", "fake", "--symbols", "AAPL", "--task", "levels",
        "--val-window", "30", "--storage", db.url, "--store", db.root / "nowhere", "--top", "3",
    )  # fmt: skip
    assert code == 0 and out.startswith(
        f"{OPEN}: price_mae (minimize; the symbol's price units), 4 complete trials"
    )
    assert "\nunits: price_mae in the symbol's price units; return_mae," in out
    assert f"note: {OPEN} is not finalised" in err
    # read only: nothing finalised, nothing written
    assert not (db.root / "nowhere").exists()
    assert "confirmation" not in optuna.load_study(study_name=OPEN, storage=db.url).user_attrs


def test_export_top_reads_only_and_names_only_the_studies_export_would(db, capsys):
    path = db.store / "levels" / "fake" / "AAPL.json"
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    study = optuna.load_study(study_name=LEVELS, storage=db.url)
    attrs = dict(study.user_attrs)
    code, out, _ = leaderboard(
        capsys, "export", "--model", "fake", "--symbols", "AAPL", "--task", "levels",
        "--storage", db.url, "--store", db.store / "levels", "--top", "2", "--format", "json",
    )  # fmt: skip
    assert code == 0
    assert [b["study"] for b in json.loads(out)["studies"]] == [LEVELS]
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    assert optuna.load_study(study_name=LEVELS, storage=db.url).user_attrs == attrs
    code, out, _ = leaderboard(
        capsys, "export", "--model", "fake", "--all", "--storage", db.url, "--top", "1",
        "--format", "csv",
    )  # fmt: skip
    assert code == 0
    assert sorted(r["study"] for r in csv.DictReader(io.StringIO(out))) == sorted(
        [LEVELS, ACCURACY, OPEN]
    )


def test_the_three_formats_carry_the_same_rows(db, capsys, tmp_path):
    as_json = boards(capsys, db, "--top", "4")
    code, out, _ = leaderboard(capsys, "status", "--storage", db.url, "--top", "4", "--format",
                               "csv")  # fmt: skip
    assert code == 0
    table = list(csv.DictReader(io.StringIO(out)))
    assert len(table) == sum(len(b["rows"]) for b in as_json.values()) == 12
    for row in table:
        expected = next(r for r in as_json[row["study"]]["rows"] if r["rank"] == int(row["rank"]))
        assert int(row["trial"]) == expected["trial"]
        assert row["ranked_by"] == expected["ranked_by"]
        assert float(row["value"]) == expected["value"]  # full precision
        assert float(row["price_mae"]) == expected["metrics"]["price_mae"]
        assert json.loads(row["config"]) == expected["config"]
        assert row["winner"] == ("true" if expected["winner"] else "false")
        assert (row["confirmed"] == "") == (expected["confirmed"] is None)
    # the table (the default) and `status --top` == `export --top` for the same study
    code, text, _ = leaderboard(capsys, "status", "--storage", db.url, "--top", "4",
                                "--symbols", "AAPL")  # fmt: skip
    assert code == 0
    blocks = text.split("\n\n")
    assert sorted(b.split(": ")[0] for b in blocks[:3]) == sorted([LEVELS, ACCURACY, OPEN])
    levels = next(b for b in blocks if b.startswith(f"{LEVELS}: "))
    lines = levels.splitlines()
    assert lines[1].split()[:4] == ["rank", "trial", "ranked_by", "value"]
    assert set(lines[2]) <= {"-", " "}
    cells = [line.split() for line in lines[3:]]
    ranks = [c[0] for c in cells]
    assert ranks == ["1*", "2", "3", "4"]
    assert [int(c[1]) for c in cells] == [r["trial"] for r in as_json[LEVELS]["rows"]]
    assert [c[2] for c in cells] == [CONFIRMED] * 3 + [FIRST_PASS]
    code, exported, _ = leaderboard(
        capsys, "export", "--model", "fake", "--symbols", "AAPL", "--task", "levels",
        "--storage", db.url, "--top", "4",
    )  # fmt: skip
    assert code == 0 and exported.split("\n\n")[0] == levels
    # --out writes the same text to a file and nothing to stdout
    code, out, err = leaderboard(capsys, "status", "--storage", db.url, "--top", "4",
                                 "--out", tmp_path / "lb.txt")  # fmt: skip
    assert code == 0 and out == "" and (tmp_path / "lb.txt").read_text() == text
    assert "wrote 12 rows of 3 studies" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["status", "--top", "0"], "argument --top: 0 is below 1"),
        (["status", "--top", "-2"], "argument --top: -2 is below 1"),
        (["status", "--top", "many"], "argument --top: 'many' is not a whole number"),
        (["status", "--top", "3", "--format", "xml"], "argument --format: invalid choice"),
        (["status", "--format", "csv"], "--format only works with --top N"),
        (["status", "--top", "3", "--symbols", "ZZZ"], "no study of --symbols ZZZ in sqlite"),
        (["export", "--model", "fake", "--symbols", "AAPL", "--task", "levels", "--val-window",
          "99", "--top", "3"], "no study fake:AAPL:v99-t20-h1; run `optimise launch` first"),
        (["export", "--model", "fake", "--symbols", "AAPL", "--out", "x.csv"],
         "--out only works with --top N"),
        (["status", "--top", "3", "--out", "/nonexistent/dir/x"], "cannot write --out"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(db, capsys, args, message):
    code, out, err = leaderboard(capsys, *args, "--storage", db.url)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1, err
    assert "Traceback" not in err


def test_a_missing_database_is_one_line(tmp_path, capsys):
    code, out, err = leaderboard(
        capsys, "status", "--storage", f"sqlite:///{tmp_path / 'none.db'}", "--top", "3"
    )
    assert code == 2 and out == "" and err.startswith("error: no study database at")
    assert not (tmp_path / "none.db").exists()


def test_postgresql(postgres_url, capsys):
    handle = Database.open(postgres_url)
    ctx = StudyContext(load_backend("fake"), load_bars(SAMPLE_DATA, "AAPL"), WindowSpec())
    study = open_study(handle.optuna, ctx, storage_label=handle.label)
    run_study(study, ctx, handle.ledger, 3, WorkerSettings(progress=False))
    code, out, _ = leaderboard(capsys, "status", "--storage", postgres_url, "--top", "2",
                               "--format", "json")  # fmt: skip
    assert code == 0
    (board,) = json.loads(out)["studies"]
    assert board["study"] == LEVELS and [r["ranked_by"] for r in board["rows"]] == [FIRST_PASS] * 2
    code, out, _ = leaderboard(
        capsys, "export", "--model", "fake", "--symbols", "AAPL", "--task", "levels",
        "--storage", postgres_url, "--top", "2", "--format", "csv",
    )  # fmt: skip
    assert code == 0 and len(list(csv.DictReader(io.StringIO(out)))) == 2


# ---------------------------------------------------------------------------------------------
# rank() alone, on made-up trials


def trial(number: int, value: float, x: float, **attrs: float) -> FrozenTrial:
    made = optuna.trial.create_trial(
        value=value, params={"x": x}, distributions={"x": FloatDistribution(0, 10)},
        user_attrs={"config": {"x": x}, "price_mae": value, **attrs},
    )  # fmt: skip
    made.number = number
    return made


def test_rank_under_each_direction_with_confirmation_and_copies():
    trials = [trial(0, 5.0, 0), trial(1, 1.0, 1), trial(2, 3.0, 2), trial(3, 1.0, 1),
              trial(4, 2.0, 4), trial(5, 4.0, 5)]  # fmt: skip
    rows, distinct, better = rank(trials, maximize=False, top=10)
    assert distinct == 5 and better == 0
    assert [(r.trial, r.ranked_by, r.duplicates) for r in rows] == [
        (1, FIRST_PASS, 1), (4, FIRST_PASS, 0), (2, FIRST_PASS, 0), (5, FIRST_PASS, 0),
        (0, FIRST_PASS, 0),
    ]  # fmt: skip
    rows, _, _ = rank(trials, maximize=True, top=2)
    assert [r.trial for r in rows] == [0, 5]
    # confirmed means re-order the candidates and put them first; trial 3 (a copy of 1) was the
    # one confirmed, so it stands for the configuration
    confirmed = {3: (2.5, 0.1), 4: (2.2, 0.2)}
    rows, distinct, better = rank(trials, maximize=False, top=3, confirmed=confirmed, winner=4,
                                  winner_latency_s=0.7)  # fmt: skip
    assert [(r.trial, r.ranked_by, r.value) for r in rows] == [
        (4, CONFIRMED, 2.2), (3, CONFIRMED, 2.5), (2, FIRST_PASS, 3.0),
    ]  # fmt: skip
    assert rows[0].winner and rows[0].latency_s == 0.7 and rows[1].latency_s is None
    assert rows[1].duplicates == 1 and rows[1].first_pass == 1.0 and rows[1].confirmed_se == 0.1
    assert better == 0
    # a trial that finished after confirmation and beats a candidate's first pass is counted
    rows, _, better = rank([*trials, trial(6, 0.5, 6)], maximize=False, top=3,
                           confirmed=confirmed)  # fmt: skip
    assert better == 1 and rows[2].trial == 6 and rows[2].ranked_by == FIRST_PASS
    with pytest.raises(ValueError, match="top"):
        rank(trials, maximize=False, top=0)


def test_confirmed_values_read_the_confirmation_attr():
    attr = {"candidates": [
        {"trial_number": 3, "confirmed_crps": 0.5, "confirmed_crps_se": 0.01},
        {"trial_number": 4, "confirmed_crps": 0.6, "confirmed_crps_se": float("nan")},
        {"trial_number": 5, "confirmed_price_mae": 1.0},
    ]}  # fmt: skip
    assert confirmed_values(attr, "crps")[3] == (0.5, 0.01)
    assert set(confirmed_values(attr, "crps")) == {3, 4}
    assert confirmed_values(None, "crps") == {} == confirmed_values({"x": 1}, "crps")
