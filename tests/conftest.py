"""Shared fixtures: the repository's sample data, CLI runners, and throw-away PostgreSQL
databases on the server at 127.0.0.1:5432."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import tests.fake_backend  # noqa: F401 - registers the test double as model "fake"
from objectives.disk_cache import CACHE_DIR_ENV, CACHE_SIZE_ENV
from optimise.cli import main

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DATA = REPO / "trainingdata"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session", autouse=True)
def _session_stage1_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No test writes the user's stage-1 disk cache (module fixtures share this folder)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CACHE_DIR_ENV, str(tmp_path_factory.mktemp("stage1-cache")))
        yield


@pytest.fixture(autouse=True)
def _stage1_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each test its own, empty stage-1 disk cache (also for the CLI in subprocesses), so no
    test's pass counts depend on which tests ran before it."""
    folder = tmp_path_factory.getbasetemp() / "stage1-caches" / uuid.uuid4().hex[:12]
    monkeypatch.setenv(CACHE_DIR_ENV, str(folder))
    monkeypatch.delenv(CACHE_SIZE_ENV, raising=False)


@pytest.fixture
def sample_data() -> Path:
    """The repository's own daily bars (``trainingdata/``): tests need nothing outside it."""
    return SAMPLE_DATA


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty folder so nothing lands in the repo."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OPTIMISE_STORAGE", raising=False)
    monkeypatch.delenv("HYPERPARAM_ROOT", raising=False)  # the default --store is ./store
    return tmp_path


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny random-weight Toto and Kronos checkpoints, made once per test module."""
    root = tmp_path_factory.mktemp("checkpoints")
    for arch in ("toto", "kronos"):
        assert run_cli("checkpoint", "init", "--arch", arch, "--preset", "tiny", root / arch) == 0
    return {"toto": root / "toto", "kronos": root / "kronos"}


def run_cli(*args: str) -> int:
    """Run ``optimise`` in-process (the fake backend is registered)."""
    return main([str(a) for a in args])


def launch_fake(data: Path, n_trials: int, *extra: str) -> int:
    """``optimise launch`` of the fake model on ``<data>/AAPL.csv`` in the current folder."""
    return run_cli(
        "launch", "--model", "fake", "--symbols", "AAPL", "--data-dir", data,
        "--n-trials", n_trials, "--no-progress", *extra,
    )  # fmt: skip


def cli_command(*args: str) -> list[str]:
    """The command line of a subprocess running ``optimise`` with the fake backend."""
    return [sys.executable, "-m", "tests.fake_backend", *[str(a) for a in args]]


def cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("OPTIMISE_STORAGE", None)
    env.pop("HYPERPARAM_ROOT", None)
    env.update(extra)
    return env


def run_cli_process(*args: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        cli_command(*args), env=cli_env(**env), capture_output=True, text=True, timeout=timeout
    )


def _postgres_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN, connect_timeout=3):
            return True
    except Exception:  # noqa: BLE001
        return False


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards."""
    if not _postgres_available():
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    import psycopg

    name = f"optimise_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
