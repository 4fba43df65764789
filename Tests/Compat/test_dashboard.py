"""The live dashboard example (`Examples/dashboard/index.html`) in a real browser.

Headless Chromium from Debian's packages (`/usr/bin/chromium`, driven through Debian's
`/usr/bin/chromedriver` by Selenium) opens the page the two ways its README describes: as a
local file (`file://`, so the stream is cross-origin from the `null` origin and relies on
Hearth's `Access-Control-Allow-Origin: *`) and served over HTTP by Python's `http.server`.
The server runs without `--emulator` under the factory-webhook rules (anonymous writes,
reads need a credential) with a known admin token, as `make run` does.

The test uses the page as a person would: it types the server URL, presses Connect without a
token and reads the server's refusal, then types the admin token and connects again. It then
checks

* the seeded records (posted anonymously with `requests`) as rows, newest first, and the
  pass/fail counters (plus the "without a result" one, for a record with no `success`);
* records POSTed anonymously while the page is open (one pass, one fail): new rows marked
  "new" and counters updated, without a reload;
* a record PATCHed from fail to pass: its row marked "changed", the counters moved;
* the summary for screen readers, which includes the counts;
* a smaller "Latest records": rows and counters cover only the records the page holds;
* no script errors, and the token nowhere in the browser's storage.

Chromium is required: without it the test fails with a message saying how to install it
(`make system-deps` does); it is never skipped.
"""

from __future__ import annotations

import functools
import http.server
import secrets
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import requests

from browser import browser_errors, start_browser, wait_until
from compat_helpers import HOST, HTTP_TIMEOUT_SECONDS

WAIT_SECONDS = 20  # generous: the machine may be busy
REPO_ROOT = Path(__file__).resolve().parents[2]
DASHBOARD_DIR = REPO_ROOT / "Examples" / "dashboard"

RULES = '{"rules": {".read": "auth != null", ".write": "auth == null"}}\n'


def result(device: str, success: Any, msg: str) -> dict:
    """A test result as the device agent posts it (`success` None: the field is missing)."""
    record = {"device_id": device, "mac": "0c2a69" + device[-6:], "type": "testresult",
              "msg": msg, "timestamp": {".sv": "timestamp"}}
    if success is not None:
        record["success"] = success
    return record


SEEDED = [
    result("23a1b4c5d6e7f801", True, "All 14 tests passed"),
    result("23a1b4c5d6e7f802", False, 'Voltage low, 3.1 V ("brownout")'),
    result("23a1b4c5d6e7f803", True, "All 14 tests passed"),
    result("23a1b4c5d6e7f804", True, "All 14 tests passed"),
    result("23a1b4c5d6e7f805", False, "Check wifi antenna"),
    result("23a1b4c5d6e7f806", None, "Agent restarted before the result"),
]
POSTED_PASS = result("23a1b4c5d6e7f807", True, "Posted while the dashboard was open")
POSTED_FAIL = result("23a1b4c5d6e7f808", False, "Posted while the dashboard was open: LED 3 dark")


# --------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the dashboard folder without logging every request to stderr."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


@pytest.fixture
def page_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The dashboard's address: the file itself, or the folder served over HTTP on a free port."""
    if request.param == "file":
        yield (DASHBOARD_DIR / "index.html").as_uri()
        return
    handler = functools.partial(QuietHandler, directory=str(DASHBOARD_DIR))
    server = http.server.ThreadingHTTPServer((HOST, 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="dashboard-http", daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class Dashboard:
    """A server under the webhook rules, a REST session, and a browser for the page."""

    def __init__(self, server, token: str, driver, page_url: str) -> None:
        self.server = server
        self.token = token
        self.driver = driver
        self.page_url = page_url
        self.http = requests.Session()
        self.http.trust_env = False

    def rest(self, method: str, path: str, *, token: str | None = None, **kwargs: Any) -> requests.Response:
        """A REST call; `token` (None: anonymous, as the webhooks write) as `Authorization: Bearer`."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.http.request(method, f"{self.server.base_url}/{path.strip('/')}.json", headers=headers,
                                 timeout=HTTP_TIMEOUT_SECONDS, **kwargs)

    def post(self, record: dict) -> str:
        """POSTs `record` to /testresult anonymously; returns its push ID."""
        response = self.rest("POST", "testresult", json=record)
        assert response.status_code == 200, response.text
        return response.json()["name"]

    # ---- browser helpers ----

    def wait(self, condition: Callable[[Any], Any], what: str, timeout: float = WAIT_SECONDS):
        return wait_until(self.driver, condition, what, timeout, self.diagnostics)

    def text(self, element_id: str) -> str:
        return self.driver.execute_script("return document.getElementById(arguments[0]).textContent;", element_id)

    def fill(self, field_id: str, value: str) -> None:
        """Replaces the text of an input as a person would: select all, type."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys

        field = self.driver.find_element(By.ID, field_id)
        field.click()
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys(Keys.DELETE)
        field.send_keys(value)
        assert field.get_attribute("value") == value

    def connect(self) -> None:
        from selenium.webdriver.common.by import By

        self.driver.find_element(By.ID, "connect").click()

    def rows(self) -> list[dict]:
        """The table's rows, top to bottom: key, device, result, message, highlight and badge."""
        return self.driver.execute_script(
            "return [...document.querySelectorAll('#rows tr')].map(tr => ({"
            " key: tr.children[0].title.replace(/^Key /, ''),"
            " device: tr.children[0].firstChild ? tr.children[0].firstChild.textContent : '',"
            " result: tr.children[2].textContent,"
            " msg: tr.children[4].textContent,"
            " marks: ['fresh', 'changed'].filter(c => tr.classList.contains(c)),"
            " badge: (tr.querySelector('.badge') || {}).textContent || ''}));")

    def counts(self) -> dict:
        """The counters as shown: the numbers (by data-testid), and whether "without a result" shows."""
        return self.driver.execute_script(
            "const n = id => document.querySelector(`[data-testid=\"${id}\"]`).textContent;"
            "return {passes: n('passes'), fails: n('fails'), others: n('others'),"
            " othersShown: !document.getElementById('others-item').hidden};")

    def wait_for(self, keys: list[str], counts: dict, what: str) -> list[dict]:
        """Waits until the rows are `keys` (top to bottom) and the counters show `counts`."""
        expected = {name: str(value) for name, value in counts.items()}
        expected["othersShown"] = counts["others"] > 0
        state: dict = {}

        def ready(driver) -> bool:
            state["rows"], state["counts"] = self.rows(), self.counts()
            return [row["key"] for row in state["rows"]] == keys and state["counts"] == expected

        self.wait(ready, f"{what}: rows {keys} and counters {expected}")
        return state["rows"]

    def diagnostics(self) -> str:
        """What the page showed, its messages and the server's log, for failure messages."""
        try:
            state = self.driver.execute_script(
                "const t = id => (document.getElementById(id) || {}).textContent;"
                "return {status: t('status-text'), detail: t('status-detail'), count: t('count'),"
                " passes: t('passes'), fails: t('fails'), others: t('others'), announcer: t('announcer'),"
                " rows: [...document.querySelectorAll('#rows tr')].map(tr => tr.textContent),"
                " log: [...document.querySelectorAll('#log li')].slice(0, 10).map(li => li.textContent)};")
        except Exception as error:  # noqa: BLE001 - only for the message
            state = f"<page state unavailable: {error}>"
        return f"page: {state}\nbrowser log: {browser_errors(self.driver, everything=True)}\n" \
               f"--- server stderr ---\n{self.server.stderr_tail(2000)}"


@pytest.fixture
def dashboard(hearth_launcher, tmp_path, page_url) -> Iterator[Dashboard]:
    """`hearth serve` under the webhook rules with a known admin token, and a browser."""
    token = "dashboard-" + secrets.token_hex(20)
    rules = tmp_path / "database.rules.json"
    rules.write_text(RULES)
    server = hearth_launcher(tmp_path / "data", tmp_path, emulator=False, log_name="hearth-dashboard",
                             extra_args=[f"--admin-token={token}", "--rules", str(rules)])
    driver = start_browser(tmp_path / "chromedriver.log", "dashboard")
    dashboard = Dashboard(server, token, driver, page_url)
    try:
        yield dashboard
    finally:
        dashboard.http.close()
        driver.quit()


# --------------------------------------------------------------------------------------
# The test
# --------------------------------------------------------------------------------------


def expected_counts(records: dict[str, dict]) -> dict:
    values = [record.get("success") for record in records.values()]
    passes = sum(1 for value in values if value is True)
    fails = sum(1 for value in values if value is False)
    return {"passes": passes, "fails": fails, "others": len(values) - passes - fails}


def newest_first(records: dict[str, dict], limit: int | None = None) -> list[str]:
    keys = sorted(records)  # push IDs sort by creation time, as `orderBy="$key"` does
    return list(reversed(keys[-limit:] if limit else keys))


@pytest.mark.parametrize("page_url", ["file", "http"], indirect=True)
def test_dashboard_shows_live_rows_and_pass_fail_counters(dashboard: Dashboard) -> None:
    from selenium.webdriver.common.by import By

    driver = dashboard.driver
    # Anonymous writes (the webhooks) are allowed; reading needs a credential.
    records: dict[str, dict] = {}
    for record in SEEDED:
        records[dashboard.post(record)] = record
    assert len(records) == len(SEEDED)
    assert dashboard.rest("GET", "testresult").status_code == 401

    driver.get(dashboard.page_url)
    dashboard.wait(lambda d: d.execute_script("return document.readyState") == "complete", "the page to load")
    driver.execute_script("window.notReloaded = true;")  # gone if the page ever reloads
    assert dashboard.counts() == {"passes": "–", "fails": "–", "others": "0", "othersShown": False}
    assert driver.find_element(By.ID, "path").get_attribute("value") == "testresult"
    assert driver.find_element(By.ID, "limit").get_attribute("value") == "50"

    # The server URL, no token yet: the page shows the server's refusal.
    dashboard.fill("server", dashboard.server.base_url)
    dashboard.connect()
    dashboard.wait(lambda d: "401" in dashboard.text("status-detail"), "the 401 without a token")
    assert dashboard.text("status-text") == "Not connected"
    assert "Permission denied" in dashboard.text("status-detail")
    assert dashboard.rows() == []

    # With the admin token: the seeded records, newest first, and the counters.
    dashboard.fill("token", dashboard.token)
    dashboard.connect()
    dashboard.wait(lambda d: dashboard.text("status-text") == "Live", "the status to say Live")
    rows = dashboard.wait_for(newest_first(records), expected_counts(records), "the seeded records")
    assert expected_counts(records) == {"passes": 3, "fails": 2, "others": 1}
    by_key = {row["key"]: row for row in rows}
    for key, record in records.items():
        row = by_key[key]
        assert row["device"] == record["device_id"]
        assert row["msg"] == record["msg"]
        assert row["result"] == {True: "✓ Pass", False: "✗ Fail"}.get(record.get("success"), "—")
        assert row["marks"] == [] and row["badge"] == "", "the first rows are not new"
    assert dashboard.text("count") == f"({len(records)})"

    # The counters are labelled in words, in a list named for what it counts.
    tally = driver.find_element(By.ID, "tally")
    assert tally.accessible_name == "Passes and fails among the records received"
    labels = [" ".join(item.text.replace("✓", "").replace("✗", "").split())
              for item in tally.find_elements(By.TAG_NAME, "li") if item.is_displayed()]
    assert labels == ["3 passed", "2 failed", "1 without a result"]

    # A webhook posts a pass, then a fail (anonymously, outside the browser): new rows on top,
    # marked new, and the counters follow, without a reload.
    passed = dashboard.post(POSTED_PASS)
    records[passed] = POSTED_PASS
    failed = dashboard.post(POSTED_FAIL)
    records[failed] = POSTED_FAIL
    rows = dashboard.wait_for(newest_first(records), expected_counts(records), "the posted records")
    assert expected_counts(records) == {"passes": 4, "fails": 3, "others": 1}
    assert [(row["key"], row["result"], row["badge"], row["marks"]) for row in rows[:2]] == [
        (failed, "✗ Fail", "new", ["fresh"]), (passed, "✓ Pass", "new", ["fresh"])]
    assert all(row["marks"] == [] for row in rows[2:]), "only the posted rows are new"
    assert driver.execute_script("return window.notReloaded === true;"), "the page reloaded"

    # A retest turns the first failure into a pass: its row is marked changed, the counters move.
    retested = next(key for key, record in records.items() if record.get("success") is False)
    patched = dashboard.rest("PATCH", f"testresult/{retested}", json={"success": True, "msg": "Retested: OK"})
    assert patched.status_code == 200, patched.text
    records[retested] = {**records[retested], "success": True, "msg": "Retested: OK"}
    rows = dashboard.wait_for(newest_first(records), expected_counts(records), "the retested record")
    assert expected_counts(records) == {"passes": 5, "fails": 2, "others": 1}
    row = next(row for row in rows if row["key"] == retested)
    assert (row["result"], row["msg"], row["badge"], row["marks"]) == ("✓ Pass", "Retested: OK", "changed", ["changed"])

    # Screen readers hear a summary of the changes with the counts (at most every 4 seconds).
    dashboard.wait(lambda d: dashboard.text("announcer").endswith("5 passed, 2 failed."),
                   "the announcement with the counts")

    # The counters cover the records the page holds: with "Latest records" 3, only the newest three.
    dashboard.fill("limit", "3")
    dashboard.connect()
    held = {key: records[key] for key in newest_first(records, 3)}
    dashboard.wait_for(newest_first(records, 3), expected_counts(held), "the three newest records")
    assert dashboard.text("count") == "(3)"
    assert driver.execute_script("return window.notReloaded === true;"), "the page reloaded"

    # And they keep following: a new pass pushes the oldest of the three out.
    newest = dashboard.post(POSTED_PASS)
    records[newest] = POSTED_PASS
    held = {key: records[key] for key in newest_first(records, 3)}
    dashboard.wait_for(newest_first(records, 3), expected_counts(held), "a new record replacing the oldest")

    # The token is not kept anywhere in the browser; the page logged no errors.
    stored = driver.execute_script(
        "return Object.keys(localStorage).map(k => localStorage.getItem(k)).concat("
        "Object.keys(sessionStorage).map(k => sessionStorage.getItem(k)), [document.cookie]);")
    assert dashboard.token not in " ".join(stored)
    assert browser_errors(driver) == [], "the page logged errors"
