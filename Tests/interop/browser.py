"""A headless Chromium (Debian's chromium and chromium-driver) driven with selenium, for the
dashboard's tests and benchmark; `quit()` stops the driver and the browser it started."""
import os
import shutil
import tempfile

import pytest

ARTIFACTS = os.path.join(os.path.dirname(__file__), "..", "..", ".build", "test-artifacts", "dashboard")


def chromium(width=1280, height=900):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not browser or not driver:
        pytest.fail("no chromium or chromedriver: scripts/install-deps.sh installs the chromium and chromium-driver packages")
    options = Options()
    options.binary_location = browser
    profile = tempfile.mkdtemp(prefix="tasker-chromium-")
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run",
                     "--window-size=%d,%d" % (width, height), "--user-data-dir=" + profile):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    session = webdriver.Chrome(options=options, service=Service(driver))
    session.set_script_timeout(30)
    original_quit = session.quit

    def quit():
        try:
            original_quit()
        finally:
            shutil.rmtree(profile, ignore_errors=True)

    session.quit = quit
    return session


def screenshot(session, name):
    os.makedirs(ARTIFACTS, exist_ok=True)
    path = os.path.join(ARTIFACTS, name + ".png")
    session.save_screenshot(path)
    return path
