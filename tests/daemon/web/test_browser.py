"""The console in a real browser: headless Chromium (Debian's `chromium` and
`chromium-driver`, installed by .ci/run) driven by Selenium against a real `watchkeeper run`
on loopback, over a state directory holding a scripted incident.

Skipped, saying why, only where Chromium is not installed; under CI its absence fails.
Set WATCHKEEPER_SCREENSHOTS=DIR to keep the pages as PNGs (the README's come from here).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.daemon.web.seed import EVIL, ROOT_CAUSE, SECRET_EVIDENCE, seed
from tests.peers.loopback import free_port
from tests.reliability import child_env, wait_for

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
TOKEN = "tok-browser-7d1e"

if not (CHROMIUM and DRIVER):
    if os.environ.get("CI"):
        pytest.fail(
            "CI must run the browser tests: .ci/run installs chromium and chromium-driver",
            pytrace=False,
        )
    pytest.skip(
        "headless Chromium not installed (apt-get install chromium chromium-driver)",
        allow_module_level=True,
    )


def config(tmp_path: Path, web: str, port: int) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f"""
[daemon]
state_dir = "{tmp_path / "state"}"
jitter = "0s"
cycle_window = "0s"
[triage]
enabled = false
[escalation]
enabled = false
{web}
[web.status]
enabled = true
title = "Example Corp status"
checks = ["tag:storefront"]
[[checks]]
name = "api"
type = "tcp"
host = "127.0.0.1"
port = 1
interval = "2s"
tags = ["storefront"]
[[checks]]
name = "db"
type = "tcp"
host = "127.0.0.1"
port = {port}
interval = "2s"
tags = ["storefront"]
[[checks]]
name = "payroll-internal"
type = "tcp"
host = "127.0.0.1"
port = 3
interval = "2s"
""")
    return path


class Daemon:
    def __init__(self, base: str, proc: subprocess.Popen[str]) -> None:
        self.base = base
        self.proc = proc


def _start(tmp_path: Path, web: str, port: int) -> Iterator[Daemon]:
    path = config(tmp_path, web, port)
    seed(tmp_path / "state")
    proc = subprocess.Popen(
        [sys.executable, "-m", "daemon", "run", "--config", str(path)],
        env=child_env(WEB_TOKEN=TOKEN),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        """Healthy, with a cycle of its own committed (so the pages show live results)."""
        try:
            health = httpx.get(base + "/healthz", timeout=1)
        except httpx.HTTPError:
            return proc.poll() is not None
        return health.status_code == 200 and health.json()["cycles"] >= 1

    try:
        wait_for(up, "the daemon's listener", 30)
        assert proc.poll() is None, proc.communicate()[0]
        yield Daemon(base, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    port = free_port()
    yield from _start(tmp_path, f'[web]\nenabled = true\nlisten = "127.0.0.1:{port}"\n', port)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(arg)
    options.add_argument("--disable-dev-shm-usage")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(DRIVER)))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def shot(browser: Any, name: str) -> None:
    folder = os.environ.get("WATCHKEEPER_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(Path(folder) / f"{name}.png"))


def test_overview_incident_and_spend_in_a_browser(daemon: Daemon, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    browser.get(daemon.base + "/")
    assert browser.title == "watchkeeper · overview"
    row = browser.find_element(By.CSS_SELECTOR, "#open-incidents tbody tr")
    assert "#1" in row.text and "api" in row.text and "HIGH" in row.text
    assert "refused" in row.text  # the daemon's own latest evidence for the incident
    names = [
        e.get_attribute("data-check")
        for e in browser.find_elements(By.CSS_SELECTOR, "#checks tbody tr")
    ]
    assert set(names) == {"api", "db", "payroll-internal"}
    assert browser.find_elements(By.CSS_SELECTOR, "tr[data-check='db'] svg.spark")
    shot(browser, "overview")

    row.find_element(By.LINK_TEXT, "#1").click()
    wait_for(lambda: browser.current_url.endswith("/incidents/1"), "the incident page", 10)
    body = browser.find_element(By.TAG_NAME, "main").text
    assert ROOT_CAUSE in body
    assert "kill the batch job" in body
    assert "$0.0123" in browser.find_element(By.ID, "incident-cost").text
    assert "watchkeeper investigate 1" in body
    # The scripted first evidence's markup is shown as text: no script ran, no element was
    # made of it (the page's only script is /static/live.js, and only on the overview).
    first = browser.find_element(By.ID, "first-evidence")
    assert EVIL in first.text
    assert first.find_elements(By.CSS_SELECTOR, "script, img") == []
    assert browser.find_elements(By.CSS_SELECTOR, "main script, main img") == []
    assert browser.execute_script("return document.title") == "watchkeeper · incident #1"
    shot(browser, "incident")

    browser.get(daemon.base + "/spend?since=7d")
    chart = browser.find_element(By.CSS_SELECTOR, "#spend-charts svg.chart:nth-of-type(3)")
    labels = chart.text
    assert "anthropic/claude-sonnet-4-5" in labels and "$0.0123" in labels
    assert "ollama/gemma4:27b" in labels and "$0.0000" in labels
    assert "+1 unknown" in browser.find_element(By.ID, "spend-charts").text
    assert "unknown price" in browser.find_element(By.ID, "spend-unknown").text
    shot(browser, "spend")


def test_status_page_hides_internals_in_a_browser(daemon: Daemon, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    browser.get(daemon.base + "/status")
    text = browser.find_element(By.TAG_NAME, "body").text
    assert "Example Corp status" in text
    assert "api" in text and "db" in text
    for internal in ("payroll-internal", SECRET_EVIDENCE, "HTTP 503", "anthropic", "Overview"):
        assert internal not in text
    assert browser.find_elements(By.CSS_SELECTOR, "a[href='/']") == []
    shot(browser, "status")


def test_off_loopback_a_browser_without_the_token_is_refused(tmp_path: Path, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    port = free_port()
    web = f'[web]\nenabled = true\nlisten = "0.0.0.0:{port}"\ntoken = "secret:WEB_TOKEN"\n'
    for running in _start(tmp_path, web, port):
        assert httpx.get(running.base + "/").status_code == 401
        browser.delete_all_cookies()
        browser.get(running.base + "/")
        assert "authentication required" in browser.find_element(By.TAG_NAME, "body").text
        browser.get(running.base + "/status")
        assert "Example Corp status" in browser.find_element(By.TAG_NAME, "body").text
        browser.get(running.base + "/?token=" + TOKEN)  # once; then the session cookie
        assert browser.current_url == running.base + "/"
        assert browser.find_element(By.CSS_SELECTOR, "#open-incidents tbody tr")
        browser.get(running.base + "/spend")
        assert "AI spend" in browser.title or "AI spend" in browser.page_source
