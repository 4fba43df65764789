"""The web console (`/.console/`) in a real browser.

Headless Chromium from Debian's packages (`/usr/bin/chromium`, driven through Debian's
`/usr/bin/chromedriver` by Selenium) opens the console of a `hearth serve` that runs under
the factory-webhook rules (anonymous writes, reads need a credential) with a known admin
token, exactly as `make run` does. The tests then use the page the way a person would, with
the keyboard where it matters:

* sign in with the admin token (kept in sessionStorage only), see the data already there,
  walk the tree with Tab, arrow keys and Enter;
* POST a new record as an anonymous webhook would (with `requests`, outside the browser) and
  see it appear, highlighted, without a reload (the page follows the server-sent events);
* change a value through the editor (a PUT the server sees);
* export the selected node as CSV and JSON: the text the page hands to the browser's download
  (and the downloaded file) must equal what the server answers for `<path>.csv` / `.json`,
  and the CSV rows must be the records;
* switch database (namespace), open the rules editor, validate a broken document and get the
  error with its line and column, the line marked and the cursor put there, nothing saved;
  then validate and save a good one.

With `HEARTH_SCREENSHOT` set (`make console-screenshot`), the first test saves a screenshot
of the console to `Docs/console.png`.

Chromium is required: without it the tests fail with a message saying how to install it
(`make system-deps` does), they are never skipped.
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import requests

from browser import browser_errors, start_browser, wait_until
from compat_helpers import HTTP_TIMEOUT_SECONDS

WAIT_SECONDS = 20  # generous: the machine may be busy
REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO_ROOT / "Docs" / "console.png"

RULES = '{"rules": {".read": "auth != null", ".write": "auth == null"}}\n'

# Factory data as the Electric Imp webhooks leave it (push IDs as keys).
TEST_RESULTS = {
    "-OCz0Jx1aQ2Jd7kP0001": {
        "device_id": "23a1b4c5d6e7f801", "mac": "0c2a69010a01", "type": "testresult",
        "success": True, "msg": "All 14 tests passed", "timestamp": 1764410400000,
    },
    "-OCz0Jx1aQ2Jd7kP0002": {
        "device_id": "23a1b4c5d6e7f802", "mac": "0c2a69010a02", "type": "testresult",
        "success": False, "msg": 'Voltage low, 3.1 V ("brownout")', "timestamp": 1764410460000,
    },
    "-OCz0Jx1aQ2Jd7kP0003": {
        "device_id": "23a1b4c5d6e7f803", "mac": "0c2a69010a03", "type": "testresult",
        "success": True, "msg": "All 14 tests passed", "timestamp": 1764410520000,
    },
}
SEED = {
    "blessing": {
        "-OCz0Hq9aQ2Jd7kP0001": {
            "device_id": "23a1b4c5d6e7f801", "mac": "0c2a69010a01", "type": "blessing",
            "success": True, "plan_id": "factory-line-1", "timestamp": 1764410300000,
        },
    },
    "blinkup": {
        "-OCz0Gk2aQ2Jd7kP0001": {
            "device_id": "23a1b4c5d6e7f801", "mac": "0c2a69010a01", "type": "blinkup",
            "success": True, "timestamp": 1764410200000,
        },
    },
    "testresult": TEST_RESULTS,
}
NEW_RECORD = {
    "device_id": "23a1b4c5d6e7f804", "mac": "0c2a69010a04", "type": "testresult",
    "success": True, "msg": "Posted while the console was open", "timestamp": {".sv": "timestamp"},
}
# Line 4 is broken: the .write rule ends where a value is expected.
BROKEN_RULES = """{
  "rules": {
    ".read": "auth != null",
    ".write": "auth === "
  }
}
"""
FIXED_RULES = """{
  // Edited in the console.
  "rules": {
    ".read": "auth != null",
    ".write": "auth == null"
  }
}
"""


# --------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------


class Console:
    """One server under the webhook rules, a REST session, and a browser on its console."""

    def __init__(self, server, token: str, driver, downloads: Path) -> None:
        self.server = server
        self.token = token
        self.driver = driver
        self.downloads = downloads
        self.http = requests.Session()
        self.http.trust_env = False

    @property
    def url(self) -> str:
        return f"{self.server.base_url}/.console/"

    def rest(self, method: str, path: str, *, token: str | None = None, ns: str | None = None,
             ext: str = ".json", **kwargs: Any) -> requests.Response:
        """A REST call; `token` (None: anonymous) travels as `Authorization: Bearer`."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        params = {"ns": ns} if ns else {}
        return self.http.request(method, f"{self.server.base_url}/{path.strip('/')}{ext}", headers=headers,
                                 params=params, timeout=HTTP_TIMEOUT_SECONDS, **kwargs)

    # ---- browser helpers ----

    def wait(self, condition: Callable[[Any], Any], what: str, timeout: float = WAIT_SECONDS):
        return wait_until(self.driver, condition, what, timeout, self.diagnostics)

    def row(self, path: str):
        """The tree item of `path` (e.g. `/testresult`), waiting until it is shown."""
        from selenium.webdriver.common.by import By

        selector = f'[role=treeitem][data-path="{path}"]'
        return self.wait(lambda d: (d.find_elements(By.CSS_SELECTOR, selector) or [None])[0],
                         f"the tree row {path}")

    def click_row(self, path: str, part: str = ".k") -> None:
        """Clicks the key (`.k`) or the open/close arrow (`.tw`) of the row of `path`. The tree is
        redrawn as data changes, so a row found a moment ago may be gone: try again then."""
        from selenium.common.exceptions import StaleElementReferenceException
        from selenium.webdriver.common.by import By

        def attempt(driver) -> bool:
            try:
                self.row(path).find_element(By.CSS_SELECTOR, f":scope > .row > {part}").click()
                return True
            except StaleElementReferenceException:
                return False

        self.wait(attempt, f"a click on the row {path}")

    def row_text(self, path: str) -> str:
        return self.driver.execute_script(
            "const li = [...document.querySelectorAll('[role=treeitem]')].find(x => x.dataset.path === arguments[0]);"
            "return li ? li.querySelector('.row').textContent : null;", path)

    def focused_path(self) -> str | None:
        return self.driver.execute_script(
            "const e = document.activeElement; return e && e.dataset ? e.dataset.path || null : null;")

    def press(self, *keys: str) -> None:
        """Sends keys to whatever has the focus."""
        for key in keys:
            self.driver.switch_to.active_element.send_keys(key)

    def text(self, element_id: str) -> str:
        return self.driver.execute_script("return document.getElementById(arguments[0]).textContent;", element_id)

    def click(self, element_id: str) -> None:
        from selenium.webdriver.common.by import By

        self.driver.find_element(By.ID, element_id).click()

    def sign_in(self) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys

        self.driver.get(self.url)
        field = self.wait(lambda d: d.find_element(By.ID, "token") if d.find_element(By.ID, "token").is_displayed() else None,
                          "the sign-in form")
        field.send_keys(self.token, Keys.ENTER)
        self.wait(lambda d: d.find_element(By.ID, "topbar").is_displayed(), "the console after signing in")

    def wait_live(self) -> None:
        self.wait(lambda d: self.text("live") == "Live", "the live indicator to say Live")

    def last_export(self, path: str) -> dict:
        return self.wait(lambda d: d.execute_script(
            "const x = window.hearthConsole.lastExport; return x && x.path === arguments[0] ? x : null;", path),
            f"the export of {path}")

    def diagnostics(self) -> str:
        """What the page showed, its messages and the server's log, for failure messages."""
        try:
            state = self.driver.execute_script(
                "const t = id => (document.getElementById(id) || {}).textContent;"
                "return {live: t('live'), toast: t('toast-text'), edit: t('ed-msg'), rules: t('rules-msg'),"
                " signin: t('signin-msg'), rows: [...document.querySelectorAll('[role=treeitem]')].map(x => x.dataset.path)};")
        except Exception as error:  # noqa: BLE001 - only for the message
            state = f"<page state unavailable: {error}>"
        return f"page: {state}\nbrowser log: {browser_errors(self.driver, everything=True)}\n" \
               f"--- server stderr ---\n{self.server.stderr_tail(2000)}"


@pytest.fixture
def console(hearth_launcher, tmp_path) -> Iterator[Console]:
    """`hearth serve` under the webhook rules with a known admin token, seeded, and a browser."""
    token = "console-" + secrets.token_hex(20)
    rules = tmp_path / "database.rules.json"
    rules.write_text(RULES)
    server = hearth_launcher(tmp_path / "data", tmp_path, emulator=False, log_name="hearth-console",
                             extra_args=["--admin-token", token, "--rules", str(rules)])
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver = start_browser(tmp_path / "chromedriver.log", "console", downloads)
    console = Console(server, token, driver, downloads)
    try:
        seeded = console.rest("PUT", "", json=SEED)  # anonymous, as the webhooks write
        assert seeded.status_code == 200, seeded.text
        yield console
    finally:
        console.http.close()
        driver.quit()


# --------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------


def test_console_shows_live_data_edits_and_exports_csv(console: Console) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver = console.driver
    # The page is served by hearth itself, and a browser asking for / is sent to it.
    page = console.http.get(console.url, timeout=HTTP_TIMEOUT_SECONDS)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html"), page.text[:200]
    redirect = console.http.get(f"{console.server.base_url}/", headers={"Accept": "text/html"},
                                allow_redirects=False, timeout=HTTP_TIMEOUT_SECONDS)
    assert redirect.status_code in (301, 302, 303, 307, 308) and redirect.headers["Location"].endswith("/.console/")
    # Reads need a credential: whatever the page shows, it read with the token.
    assert console.rest("GET", "testresult").status_code == 401

    console.sign_in()
    stored = driver.execute_script("return [sessionStorage.getItem('hearth.token'), localStorage.length, document.cookie];")
    assert stored == [console.token, 0, ""], "the token belongs in sessionStorage only"

    # Existing data: the root and its children, followed live.
    for path in ("/", "/blessing", "/blinkup", "/testresult"):
        console.row(path)
    console.wait_live()

    # Keyboard: Tab from the path field's Go button into the tree, down to /testresult, Enter.
    driver.find_element(By.ID, "goto-path").click()
    console.press(Keys.TAB, Keys.TAB)
    assert console.focused_path() == "/", f"Tab should reach the tree (focus is on {console.focused_path()!r})"
    console.press(Keys.ARROW_DOWN, Keys.ARROW_DOWN, Keys.ARROW_DOWN)
    assert console.focused_path() == "/testresult"
    console.press(Keys.ENTER)  # selects and opens
    for key in TEST_RESULTS:
        console.row(f"/testresult/{key}")
    assert console.text("sel-path") == "/testresult"
    first = next(iter(TEST_RESULTS))
    console.press(Keys.ARROW_DOWN, Keys.ARROW_RIGHT)  # to the first record, and open it
    console.row(f"/testresult/{first}/device_id")
    assert '"23a1b4c5d6e7f801"' in console.row_text(f"/testresult/{first}/device_id")
    console.press(Keys.ARROW_LEFT)  # closes it again
    console.wait(lambda d: not d.find_elements(By.CSS_SELECTOR, f'[data-path="/testresult/{first}/device_id"]'),
                 "the record to close with the Left arrow")

    # A webhook posts a new record (anonymously, outside the browser): it appears, highlighted.
    posted = console.rest("POST", "testresult", json=NEW_RECORD)
    assert posted.status_code == 200, posted.text
    name = posted.json()["name"]
    console.row(f"/testresult/{name}")
    highlighted = driver.execute_script(
        "const li = [...document.querySelectorAll('[role=treeitem]')].find(x => x.dataset.path === arguments[0]);"
        "return li.querySelector('.row').className;", f"/testresult/{name}")
    assert "flash" in highlighted, f"a new record should be highlighted (classes: {highlighted!r})"
    assert console.row_text("/testresult").strip().endswith("{4}")

    # Edit a value in the editor: select the new record's `success`, replace it with false.
    console.click_row(f"/testresult/{name}", ".tw")  # open with the mouse
    console.click_row(f"/testresult/{name}/success")
    assert console.text("sel-path") == f"/testresult/{name}/success"
    editor = driver.find_element(By.ID, "ed-value")
    assert editor.get_attribute("value") == "true"
    editor.clear()
    editor.send_keys("false")
    console.click("do-set")
    console.wait(lambda d: "Saved" in console.text("ed-msg"), "the editor to report the save")
    console.wait(lambda d: (console.row_text(f"/testresult/{name}/success") or "").endswith("false"),
                 "the edited value in the tree")
    assert console.rest("GET", f"testresult/{name}/success", token=console.token).json() is False
    # A value that is not JSON is refused in the page, with a message, and nothing is sent.
    editor.clear()
    editor.send_keys("not json")
    console.click("do-set")
    console.wait(lambda d: "Not valid JSON" in console.text("ed-msg"), "the JSON error in the editor")
    assert console.rest("GET", f"testresult/{name}/success", token=console.token).json() is False

    # Export CSV of /testresult: exactly the server's CSV, one row per record.
    console.click_row("/testresult")
    console.click("export-csv")
    exported = console.last_export("/testresult")
    assert exported["name"] == "default-testresult.csv"
    server_csv = console.rest("GET", "testresult", ext=".csv", token=console.token)
    assert server_csv.status_code == 200
    assert exported["text"] == server_csv.text
    rows = list(csv.reader(io.StringIO(exported["text"])))
    header, records = rows[0], rows[1:]
    assert header[0] == "key"
    assert {"device_id", "mac", "msg", "success", "timestamp", "type"} <= set(header[1:])
    assert [record[0] for record in records] == sorted([*TEST_RESULTS, name])
    column = {field: header.index(field) for field in header}
    by_key = {record[0]: record for record in records}
    assert by_key["-OCz0Jx1aQ2Jd7kP0002"][column["msg"]] == 'Voltage low, 3.1 V ("brownout")'
    assert by_key["-OCz0Jx1aQ2Jd7kP0002"][column["success"]] == "false"
    assert by_key[name][column["device_id"]] == "23a1b4c5d6e7f804"
    assert by_key[name][column["success"]] == "false"
    downloaded = console.downloads / "default-testresult.csv"
    console.wait(lambda d: downloaded.is_file() and downloaded.read_bytes() == server_csv.content,
                 f"the browser to save {downloaded.name}")

    # Export JSON of the same node.
    console.click("export-json")
    console.wait(lambda d: d.execute_script("return window.hearthConsole.lastExport.name;") == "default-testresult.json",
                 "the JSON export")
    exported_json = driver.execute_script("return window.hearthConsole.lastExport.text;")
    assert json.loads(exported_json) == console.rest("GET", "testresult", token=console.token).json()

    assert browser_errors(driver) == [], "the page logged errors"

    if os.environ.get("HEARTH_SCREENSHOT"):
        # A tidy view: /testresult open with one record open and selected.
        console.click_row(f"/testresult/{first}", ".tw")
        console.click_row(f"/testresult/{first}")
        console.row(f"/testresult/{first}/device_id")
        # A laptop-sized page (the window's 1280x900 includes the browser's own frame).
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False})
        time.sleep(3)  # let the highlight fade
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        assert driver.save_screenshot(str(SCREENSHOT)), "could not save the screenshot"
        print(f"screenshot saved to {SCREENSHOT}")


def test_console_switches_database_and_validates_rules(console: Console) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver = console.driver
    # Only the admin creates a namespace (by its first write).
    other = console.rest("PUT", "station", ns="line-2", json={"name": "Line 2", "open": True}, token=console.token)
    assert other.status_code == 200, other.text
    console.sign_in()
    console.row("/testresult")

    # The namespace switcher lists both databases; line-2 shows its own tree.
    switcher = Select(driver.find_element(By.ID, "ns"))
    console.wait(lambda d: {"default", "line-2"} <= {o.get_attribute("value") for o in switcher.options},
                 "both databases in the switcher")
    switcher.select_by_value("line-2")
    console.row("/station")
    console.wait(lambda d: not d.find_elements(By.CSS_SELECTOR, '[data-path="/testresult"]'), "the default tree to go")

    # The rules editor shows the rules in force for line-2, as text.
    console.click("tab-rules")
    textarea = driver.find_element(By.ID, "rules-text")
    console.wait(lambda d: textarea.get_attribute("value") == RULES, "the stored rules in the editor")
    assert console.text("rules-ns") == "line-2"

    # A broken document: Validate reports the line and column, marks the line, moves the cursor.
    driver.execute_script(
        "const t = document.getElementById('rules-text'); t.value = arguments[0];"
        "t.dispatchEvent(new Event('input', {bubbles: true}));", BROKEN_RULES)
    assert "unsaved" in console.text("rules-state")
    console.click("rules-validate")
    console.wait(lambda d: console.text("rules-msg").startswith("Line 4, column"), "the rules error with its line")
    message = console.text("rules-msg")
    assert "err" in driver.find_element(By.ID, "rules-msg").get_attribute("class")
    marked = driver.execute_script(
        "return [...document.querySelectorAll('#gutter div.err')].map(x => x.textContent);")
    assert marked == ["4"], f"line 4 should be marked in the gutter, got {marked}"
    assert driver.find_element(By.ID, "errband").is_displayed()
    cursor = driver.execute_script(
        "const t = document.getElementById('rules-text');"
        "return [document.activeElement === t, t.value.slice(0, t.selectionStart)];")
    assert cursor[0], "the rules editor should have the focus after an error"
    column = int(message.split("column ")[1].split(":")[0])
    assert cursor[1].count("\n") == 3, "the cursor should be on line 4"
    assert len(cursor[1].split("\n")[-1]) == column - 1, "the cursor should be at the reported column"
    # Validation stored nothing.
    stored = console.rest("GET", ".settings/rules", ns="line-2", token=console.token)
    assert stored.text == RULES

    # A good document validates, then saves; only line-2's rules change.
    driver.execute_script(
        "const t = document.getElementById('rules-text'); t.value = arguments[0];"
        "t.dispatchEvent(new Event('input', {bubbles: true}));", FIXED_RULES)
    assert not driver.find_element(By.ID, "errband").is_displayed()
    console.click("rules-validate")
    console.wait(lambda d: console.text("rules-msg").startswith("Valid"), "the rules to validate")
    assert console.rest("GET", ".settings/rules", ns="line-2", token=console.token).text == RULES
    console.click("rules-save")
    console.wait(lambda d: console.text("rules-msg").startswith("Saved"), "the rules to be saved")
    assert console.rest("GET", ".settings/rules", ns="line-2", token=console.token).text == FIXED_RULES
    assert console.rest("GET", ".settings/rules", token=console.token).text == RULES
    assert console.text("rules-state") == ""

    # Signing out forgets the token.
    console.click("signout")
    console.wait(lambda d: d.find_element(By.ID, "token").is_displayed(), "the sign-in form after signing out")
    assert driver.execute_script("return sessionStorage.getItem('hearth.token');") is None
    assert browser_errors(driver) == [], "the page logged errors"
