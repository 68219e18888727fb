"""A database password, in any form of URL, never leaves the environment: not in output, the
store, or any table of the database (PostgreSQL with trust auth accepts any password)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import psycopg
import pytest

from tests.conftest import REPO, cli_command, cli_env

DATA = REPO / "trainingdata"


def with_password(url: str, form: str, secret: str) -> str:
    head, rest = url.split("://", 1)
    if form == "userinfo":
        user, host = rest.split("@", 1)
        return f"{head}://{user}:{secret}@{host}"
    return f"{url}?password={secret}&sslmode=disable"


def run(*args: str, url: str, tmp: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        cli_command(*args), env=cli_env(OPTIMISE_STORAGE=url), capture_output=True, text=True,
        timeout=300, cwd=tmp,
    )  # fmt: skip


def every_text_in(database_url: str) -> str:
    conninfo = database_url.replace("postgresql+psycopg://", "postgresql://")
    texts = []
    with psycopg.connect(conninfo) as connection:
        tables = connection.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
        for (table,) in tables:
            for row in connection.execute(f'SELECT * FROM "{table}"').fetchall():
                texts.append(repr(row))
    return "\n".join(texts)


@pytest.mark.parametrize("form", ["userinfo", "query"])
def test_a_password_is_found_nowhere(form: str, postgres_url: str, tmp_path: Path) -> None:
    secret = f"S3cr3t{form}Pw"
    url = with_password(postgres_url, form, secret)
    common = ["--model", "fake", "--data-dir", DATA, "--store", tmp_path / "store"]
    results = [
        run("launch", *common, "--symbols", "MSFT", "--n-trials", "3", "--no-progress",
            url=url, tmp=tmp_path),
        run("status", url=url, tmp=tmp_path),
        run("export", *common, "--symbols", "MSFT", url=url, tmp=tmp_path),
    ]  # fmt: skip
    for result in results:
        assert result.returncode == 0, result.stderr
    failed = run("status", url=url.replace("/optimise_test_", "/missing_"), tmp=tmp_path)
    assert failed.returncode == 2 and failed.stderr.startswith("error: ")
    results.append(failed)
    assert "REDACTED" in results[0].stdout or "***" in results[0].stdout
    for result in results:
        assert secret not in result.stdout + result.stderr
    for path in (tmp_path / "store").rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes()  # records and pictures
    assert secret not in every_text_in(postgres_url)
