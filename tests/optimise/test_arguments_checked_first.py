"""Issue 21, items 2, 6 and 9: a seed or device the run cannot use is refused while the command
line is parsed (one ``error:`` line, exit code 2, nothing created); a study holding an impossible
seed is reported with the delete hint; the dashboard hint after a launch pastes as printed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import optuna
import pytest
import torch

from objectives.seeds import MAX_SEED
from tests.conftest import REPO, cli_command, cli_env, launch_fake, run_cli

DATA = REPO / "trainingdata"
KRONOS = [
    "--param=temperature=0.5", "--param=top_p=1.0", "--param=top_k=3",
    "--param=sample_count=8", "--param=max_context=64", "--param=clip=2",
]  # fmt: skip


def only_study(storage: str) -> optuna.Study:
    (name,) = optuna.get_all_study_names(storage)
    return optuna.load_study(study_name=name, storage=storage)


def refused(args: list, capsys: pytest.CaptureFixture[str], workdir: Path) -> str:
    """Run ``optimise *args``: exit code 2, one ``error:`` line, nothing written; the line."""
    before = sorted(p.name for p in workdir.iterdir())
    with pytest.raises(SystemExit) as exit_info:  # argparse's refusal (``Parser.error``)
        run_cli(*args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "unexpected" not in err and "Traceback" not in err
    assert sorted(p.name for p in workdir.iterdir()) == before  # no database, store, folder
    return err


SEEDS = ["-1", str(MAX_SEED + 1), str(2**64), "abc", "1.5", ""]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("command", ["launch", "export", "forecast", "checkpoint init"])
def test_a_seed_outside_what_seedsequence_takes_is_refused_before_anything_is_created(
    seed: str, command: str, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = {
        "launch": ["launch", "--model", "fake", "--symbols", "AAPL", "--data-dir", DATA,
                   "--n-trials", 2, "--no-progress"],
        "export": ["export", "--model", "fake", "--symbols", "AAPL", "--data-dir", DATA],
        "forecast": ["forecast", "--model", "kronos", "--symbol", "AAPL", "--data-dir", DATA,
                     *KRONOS],
        "checkpoint init": ["checkpoint", "init", "--arch", "toto", workdir / "ck"],
    }[command]  # fmt: skip
    err = refused([*args, f"--seed={seed}"], capsys, workdir)
    assert f"argument --seed: {seed!r} is not a seed: an integer from 0 to {MAX_SEED}" in err


def test_the_largest_seed_runs_a_study(workdir: Path) -> None:
    assert launch_fake(DATA, 2, "--seed", MAX_SEED, "--confirm-draws", 2) == 0
    assert only_study("sqlite:///studies.db").user_attrs["seed"] == MAX_SEED


@pytest.mark.parametrize("stored", [-1, 2**64, "7", 1.5, None])
def test_a_study_with_an_impossible_stored_seed_is_reported_with_the_delete_hint(
    stored: object, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What ``--seed -1`` left behind before it was refused: every later launch (and export)
    crashed on the stored seed; now each says what is wrong and how to delete the study."""
    assert launch_fake(DATA, 2, "--confirm-draws", 2) == 0
    storage = "sqlite:///studies.db"
    study = only_study(storage)
    study.set_user_attr("seed", stored)
    trials = len(study.trials)
    capsys.readouterr()
    for args in (
        ["launch", "--model", "fake", "--symbols", "AAPL", "--data-dir", DATA,
         "--n-trials", 4, "--no-progress"],
        ["export", "--model", "fake", "--symbols", "AAPL", "--data-dir", DATA],
        ["export", "--model", "fake", "--all", "--data-dir", DATA],
    ):  # fmt: skip
        assert run_cli(*args) == 2
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if line.startswith("error: ")]
        assert errors == [err.splitlines()[-1]], err  # launch's SQLite note may come first
        assert "unexpected" not in err
        assert "is impossible (a seed is an integer from 0 to" in err, err
        hint = f"optuna delete-study --storage '{storage}' --study-name '{study.study_name}'"
        assert hint in err
    after = only_study(storage).trials
    assert len(after) == trials  # no trial taken, none left RUNNING
    assert all(t.state != optuna.trial.TrialState.RUNNING for t in after)


def unusable_devices() -> list[str]:
    devices = ["bogus", "cuda:99", "meta", "cuda:-1"]
    if not torch.cuda.is_available():
        devices.append("cuda")
    return devices


@pytest.mark.parametrize("device", unusable_devices())
@pytest.mark.parametrize("model", ["toto", "kronos"])
def test_an_unusable_device_is_refused_before_anything_is_created(
    device: str,
    model: str,
    checkpoints: dict[str, Path],
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    launch = ["launch", "--model", model, "--checkpoint", checkpoints[model], "--symbols",
              "AAPL", "--data-dir", DATA, "--n-trials", 2, "--no-progress"]  # fmt: skip
    err = refused([*launch, f"--device={device}"], capsys, workdir)
    assert f"argument --device: {device}" in err or f"argument --device: {device!r}" in err
    forecast = ["forecast", "--model", "kronos", "--checkpoint", checkpoints["kronos"],
                "--symbol", "AAPL", "--data-dir", DATA, *KRONOS]  # fmt: skip
    refused([*forecast, f"--device={device}"], capsys, workdir)


def test_cuda_on_a_torch_built_without_it_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a CPU-only torch answers (simulated, so that a CUDA machine checks it too)."""
    from models.devices import check_device
    from models.exceptions import DeviceError

    monkeypatch.setattr(torch.version, "cuda", None)
    monkeypatch.setattr(torch.version, "hip", None)
    with pytest.raises(DeviceError, match=r"cuda: this torch \(.*\) is built without CUDA"):
        check_device("cuda")
    assert check_device("cpu") == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_visible_cuda_device_is_accepted() -> None:
    from models.devices import check_device

    assert check_device("cuda") == "cuda"
    assert check_device(f"cuda:{torch.cuda.device_count() - 1}").startswith("cuda:")


@pytest.mark.parametrize(
    "label, expected",
    [
        ("sqlite:///studies.db", "'sqlite:///studies.db'"),
        ("postgresql+psycopg://optimise:***@db:5432/optimise", '"$OPTIMISE_STORAGE"'),
        ("postgresql+psycopg://optimise@db/optimise?password=REDACTED", '"$OPTIMISE_STORAGE"'),
    ],
)
def test_a_redacted_storage_is_pasted_as_the_environment_variable(
    label: str, expected: str
) -> None:
    from studies.open import storage_arg

    assert storage_arg(label) == expected


@pytest.mark.parametrize("form", ["userinfo", "query"])
def test_the_dashboard_hint_after_a_launch_with_a_password_pastes_as_printed(
    form: str, postgres_url: str, tmp_path: Path
) -> None:
    secret = "S3cr3tDashPw"
    head, rest = postgres_url.split("://", 1)
    user, host = rest.split("@", 1)
    url = (
        f"{head}://{user}:{secret}@{host}"
        if form == "userinfo"
        else f"{postgres_url}?password={secret}&sslmode=disable"
    )
    env = cli_env(OPTIMISE_STORAGE=url)
    common = ["--data-dir", DATA, "--store", tmp_path / "store", "--no-progress"]
    launched = subprocess.run(
        cli_command("launch", "--model", "fake", "--symbols", "AAPL", "--n-trials", 2,
                    "--confirm-draws", 2, *common),
        env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert launched.returncode == 0, launched.stderr
    (line,) = [x for x in launched.stdout.splitlines() if x.startswith("dashboard: ")]
    command = line.removeprefix("dashboard: ").split("  (")[0]
    assert command == 'optimise dashboard --storage "$OPTIMISE_STORAGE"', line
    assert secret not in line
    # the printed --storage, pasted into a shell that holds the URL, opens the same database
    storage = command.split("--storage ", 1)[1]
    status = subprocess.run(
        ["bash", "-c", " ".join([*cli_command("status"), "--storage", storage])],
        env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert status.returncode == 0, status.stderr
    assert "fake:AAPL:" in status.stdout


def test_the_dashboard_hint_after_a_launch_with_a_password_in_storage_says_to_export_it(
    postgres_url: str, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--storage`` with a password: ``"$OPTIMISE_STORAGE"`` pastes only once the variable
    holds the URL, so the hint says to export it (it claimed the variable held it)."""
    secret = "S3cr3tFlagPw"
    head, rest = postgres_url.split("://", 1)
    user, host = rest.split("@", 1)
    url = f"{head}://{user}:{secret}@{host}"
    assert launch_fake(DATA, 2, "--confirm-draws", 2, "--storage", url) == 0
    out = capsys.readouterr().out
    (line,) = [x for x in out.splitlines() if x.startswith("dashboard: ")]
    assert line.startswith(
        'dashboard: optimise dashboard --storage "$OPTIMISE_STORAGE"  (first export '
        f"OPTIMISE_STORAGE=<your --storage URL>, {head}://{user}:***@{host}; http://"
    ), line
    assert secret not in out
