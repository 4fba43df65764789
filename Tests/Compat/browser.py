"""Headless Chromium for the browser tests (Debian's chromium and chromium-driver, Selenium)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def start_browser(log_path: Path, what: str, downloads: Path | None = None):
    """A headless Chromium driven through chromedriver; fails (never skips) if either or
    Selenium is missing. `downloads`, if given, is where the browser saves downloads."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        pytest.fail(
            f"the {what} test needs Debian's headless Chromium, but {', '.join(missing)} is missing. "
            "Install it with `sudo apt-get install -y chromium chromium-driver` (`make system-deps` does).",
            pytrace=False)
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as error:
        pytest.fail(f"the {what} test needs Selenium ({error}); run `make python-deps`.", pytrace=False)

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900",
                     "--disable-dev-shm-usage", "--no-proxy-server", "--force-device-scale-factor=1",
                     "--lang=en-US", "--hide-scrollbars"):
        options.add_argument(argument)
    if downloads is not None:
        options.add_experimental_option("prefs", {
            "download.default_directory": str(downloads),
            "download.prompt_for_download": False,
        })
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER, log_output=str(log_path)), options=options)
    if downloads is not None:
        try:
            driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
        except Exception:  # noqa: BLE001 - older drivers: the preference above does the same
            pass
    return driver


def wait_until(driver, condition: Callable[[Any], Any], what: str, timeout: float,
               diagnostics: Callable[[], str]):
    """Polls `condition(driver)` until it is truthy and returns it; fails the test with
    `diagnostics()` after `timeout` seconds. Elements redrawn meanwhile are retried."""
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1,
                             ignored_exceptions=(StaleElementReferenceException,)).until(condition)
    except TimeoutException:
        pytest.fail(f"timed out after {timeout}s waiting for {what}\n{diagnostics()}", pytrace=False)


def browser_errors(driver, everything: bool = False) -> list[str]:
    """Severe browser console entries (script errors, CSP violations). Failed requests (an
    expected 401 or 400, a missing favicon) are left out unless `everything`."""
    try:
        entries = driver.get_log("browser")
    except Exception:  # noqa: BLE001 - logging is best effort
        return []
    return [entry["message"] for entry in entries
            if everything or (entry.get("level") == "SEVERE" and "Failed to load resource" not in entry["message"])]
