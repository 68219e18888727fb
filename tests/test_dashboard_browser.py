"""optuna-dashboard in a real browser (headless Debian chromium driven by Playwright) shows a
finished study: its name on the list page, its objective name on the study page, and the best
trial's user attributes on the trial page.

``SAVE_SCREENSHOT=1 python -m pytest tests/test_dashboard_browser.py`` also writes the study page
to ``docs/dashboard.png``.
"""

from __future__ import annotations

import os
import re
import socket
import sys
import urllib.request
from pathlib import Path

import optuna
import pytest
from optuna.trial import FrozenTrial

from tests.conftest import REPO, run_cli
from tests.processes import Child

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "dashboard.png"
TIMEOUT_MS = 20_000

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)",
    ),
]


@pytest.fixture
def finished_study(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str, FrozenTrial]:
    """A study finished by the real command line: (storage URL, study name, best trial).

    `optimise launch --model toto` on the bundled AAPL bars with a tiny random checkpoint.
    """
    monkeypatch.chdir(tmp_path)
    storage_url = f"sqlite:///{tmp_path / 'studies.db'}"
    assert run_cli("checkpoint", "init", "--arch", "toto", "--preset", "tiny", "toto-tiny") == 0
    assert (
        run_cli(
            "launch",
            "--model",
            "toto",
            "--checkpoint",
            "toto-tiny",
            "--symbols",
            "AAPL",
            "--data-dir",
            REPO / "trainingdata",
            "--n-trials",
            "12",
            "--storage",
            storage_url,
            "--no-progress",
        )
        == 0
    )
    study_name = "toto:AAPL:v20-t20-h1:trading"
    study = optuna.load_study(study_name=study_name, storage=storage_url)
    return storage_url, study_name, study.best_trial


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_dashboard(storage_url: str, port: int) -> Child:
    """optuna-dashboard on 127.0.0.1:port in a child process; returns once it has bound the
    port (its banner), failing with what it printed if it ends first."""
    command = [sys.executable, "-m", "optimise", "dashboard", "--storage", storage_url,
               "--port", port]  # fmt: skip
    server = Child(command, cwd=REPO, name="optimise dashboard")
    try:
        server.wait_for_line(rf"on http://127\.0\.0\.1:{port}/dashboard")
    except BaseException:
        server.stop()
        raise
    return server


def test_dashboard_shows_the_study_its_objective_and_the_best_trial(
    finished_study: tuple[str, str, FrozenTrial], tmp_path: Path
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    expect = sync_api.expect
    expect.set_options(timeout=TIMEOUT_MS)
    storage_url, study_name, best = finished_study
    port = free_port()
    server = start_dashboard(storage_url, port)
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
            )
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.set_default_timeout(TIMEOUT_MS)

                # The list page names the study; its link opens the study page.
                page.goto(f"http://127.0.0.1:{port}/dashboard")
                study_link = page.get_by_role("link").filter(has_text=study_name)
                expect(study_link).to_be_visible()
                study_link.click()

                # The study page: the objective's name and the best trial.
                expect(page).to_have_url(re.compile(r"/dashboard/studies/\d+$"))
                title = re.compile(rf"^{re.escape(study_name)} \(id=\d+\)$")
                expect(page.get_by_text(title)).to_be_visible()
                expect(page.get_by_text("validation return MAE").first).to_be_visible()
                best_card = page.get_by_text(f"Best Trial (number={best.number})")
                expect(best_card).to_be_visible()
                if os.environ.get("SAVE_SCREENSHOT") == "1":
                    page.wait_for_timeout(1500)  # let the plots finish drawing
                    page.screenshot(path=str(SCREENSHOT), full_page=True)

                # The best trial's page: its user attributes with their values.
                page.get_by_role("button", name="Details").or_(
                    page.get_by_role("link", name="Details")
                ).first.click()
                expect(page).to_have_url(
                    re.compile(rf"/dashboard/studies/\d+/trials\?numbers={best.number}$")
                )
                expect(page.get_by_text(f"Trial {best.number} (trial_id=")).to_be_visible()
                expect(page.get_by_text("User Attributes")).to_be_visible()
                for key in ("return_mae", "trial_cost_s", "naive_price_mae", "skill"):
                    shown = f"{key} {best.user_attrs[key]}"  # one line per attribute
                    expect(page.get_by_text(shown, exact=True)).to_be_visible()

                # The study's note, written by finalisation: test result and export path.
                study_url = re.sub(r"/trials\?.*$", "", page.url)
                page.goto(f"{study_url}/note")
                study = optuna.load_study(study_name=study_name, storage=storage_url)
                winner = study.user_attrs["winner"]["trial_number"]  # confirmed, not first pass
                expect(page.get_by_text(f"Finalised: trial {winner}")).to_be_visible()
                expect(page.get_by_text("Confirmation (8 fresh seed sets)")).to_be_visible()
                expect(page.get_by_text("toto/AAPL.json", exact=False).first).to_be_visible()

                # The winner's picture, attached to its trial as an artifact, served as a PNG.
                page.goto(f"{study_url}/trials?numbers={winner}")
                expect(page.get_by_text(f"Trial {winner} (trial_id=")).to_be_visible()
                picture = page.locator("img[src*='/artifacts/']").first
                expect(picture).to_be_visible()
                source = picture.get_attribute("src")
                assert source is not None
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}{source}").read()
                assert body[:8] == b"\x89PNG\r\n\x1a\n"
                assert body == (tmp_path / "store" / "toto" / "AAPL.png").read_bytes()
            finally:
                browser.close()
    finally:
        server.stop()
