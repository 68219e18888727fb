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
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, IntDistribution
from optuna.trial import FrozenTrial

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
def finished_study(tmp_path: Path) -> tuple[str, str, FrozenTrial]:
    """A finished study as the service writes it: (storage URL, study name, best trial).

    Written with plain Optuna calls that mimic `optimise launch --model toto --symbols AAPL`:
    the study name, the objective's name, and per-trial user attributes.
    """
    storage_url = f"sqlite:///{tmp_path / 'studies.db'}"
    study_name = "toto:AAPL:v20-t20-h1"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=study_name, storage=storage_url, direction="minimize")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["validation price MAE"])
    study.set_user_attr("windows", {"val_window": 20, "test_window": 20, "forecast_horizon": 1})
    study.set_user_attr("metric", "price_mae")
    study.set_user_attr("checkpoint", "Datadog/Toto-Open-Base-1.0")
    distributions = {
        "num_samples": IntDistribution(16, 1024, log=True),
        "aggregate": CategoricalDistribution(["mean", "median", "trimmed_mean_10", "quantile_0.5"]),
    }
    naive = 0.6412
    settings = [
        (64, "mean", 0.7031),
        (256, "median", 0.6655),
        (32, "mean", 0.7420),
        (512, "trimmed_mean_10", 0.6218),
        (128, "quantile_0.5", 0.6490),
        (1024, "median", 0.6302),
        (16, "trimmed_mean_10", 0.7713),
        (384, "trimmed_mean_10", 0.6251),
    ]
    for number, (num_samples, aggregate, price_mae) in enumerate(settings):
        study.add_trial(
            optuna.trial.create_trial(
                params={"num_samples": num_samples, "aggregate": aggregate},
                distributions=distributions,
                value=price_mae,
                user_attrs={
                    "return_mae": round(price_mae / 57.3, 6),
                    "latency_s": round(0.011 + 0.0004 * number, 4),
                    "naive_price_mae": naive,
                    "skill": round(1 - price_mae / naive, 4),
                },
            )
        )
    return storage_url, study_name, study.best_trial


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_dashboard(storage_url: str, port: int, log: Path) -> subprocess.Popen:
    """optuna-dashboard on 127.0.0.1:port in a child process; returns once it answers."""
    code = (
        "from optuna_dashboard import run_server; "
        f"run_server({storage_url!r}, host='127.0.0.1', port={port})"
    )
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, "-c", code], stdout=out, stderr=out)
    deadline = time.monotonic() + 20
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"dashboard exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/meta", timeout=1):
                return process
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(
                    f"dashboard did not answer in 20 s:\n{log.read_text()}"
                ) from None
            time.sleep(0.1)


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def test_dashboard_shows_the_study_its_objective_and_the_best_trial(
    finished_study: tuple[str, str, FrozenTrial], tmp_path: Path
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    expect = sync_api.expect
    expect.set_options(timeout=TIMEOUT_MS)
    storage_url, study_name, best = finished_study
    port = free_port()
    server = start_dashboard(storage_url, port, tmp_path / "dashboard.log")
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
                expect(page.get_by_text("validation price MAE").first).to_be_visible()
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
                for key in ("return_mae", "latency_s", "naive_price_mae", "skill"):
                    shown = f"{key} {best.user_attrs[key]}"  # one line per attribute
                    expect(page.get_by_text(shown, exact=True)).to_be_visible()
            finally:
                browser.close()
    finally:
        stop(server)
