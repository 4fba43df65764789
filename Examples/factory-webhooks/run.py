#!/usr/bin/env python3
"""The Electric Imp "Connected Factory" data flow, pointed at a Hearth server.

It plays the three senders of a factory line, one production run of `--devices` units:

* the **DUT agent** (the agent of each device under test, see agent.nut) posts the result of
  the device's factory tests to ``/testresult.json``;
* impCentral's **Blessing webhook** posts each device that passed and was blessed to
  ``/blessing.json``;
* impCentral's **BlinkUp webhook** posts each device an end user later activates to
  ``/blinkup.json``.

All three post anonymously, as webhooks do (the rules in database.rules.json let anyone
append validated records and only credentialed callers read), or, with ``--write-token``,
with that token in every URL (``?auth=<token>``), as the webhook URLs of the stronger setup
carry it (database.rules.token.json). Then, with the admin token, it reads back what the
server holds and exports ``/testresult`` as CSV and JSON into ``--out``:

    python3 Examples/factory-webhooks/run.py --out /tmp/export

The server address comes from ``--url`` or ``HEARTH_URL`` (default http://127.0.0.1:9000),
the token from ``--token``, ``HEARTH_TOKEN`` or ``<data-dir>/admin-token`` (``--data-dir``,
default ./hearth-data, as `make run` uses). Python 3, standard library only.

Exit status: 0 when everything was posted, read back and exported; 1 when the server
refused or could not be reached (the message says which request); 2 for a usage problem
such as a missing token.
"""

from __future__ import annotations

import argparse
import csv
import io
import ipaddress
import json
import os
import random
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:9000"
TIMEOUT_SECONDS = 30
# How often a post refused with 429 (the server's write rate limit) is tried again.
RATE_LIMIT_ATTEMPTS = 10
# Electric Imp's IEEE OUI: every imp's MAC address starts with it.
IMP_OUI = "0c2a69"


class Failure(Exception):
    """A request the server refused or could not answer; the message names it."""


class Hearth:
    """A tiny REST client: writes as a webhook sends them (anonymous, or with a token in the
    URL), reads with the admin token."""

    def __init__(self, base_url: str, token: str, namespace: str | None,
                 write_token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.namespace = namespace
        self.write_token = write_token
        host = urllib.parse.urlsplit(self.base_url).hostname or ""
        handlers = []
        if _is_loopback(host):
            # A proxy from the environment must not swallow requests meant for this machine.
            handlers.append(urllib.request.ProxyHandler({}))
        self.opener = urllib.request.build_opener(*handlers)

    def url(self, path: str, suffix: str = ".json", **params: str) -> str:
        if self.namespace:
            params["ns"] = self.namespace
        query = "?" + urllib.parse.urlencode(params) if params else ""
        return f"{self.base_url}/{path.strip('/')}{suffix}{query}"

    def request(self, method: str, url: str, body: bytes | None = None,
                token: str | None = None) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(url, data=body, method=method)
        if body is not None:
            request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with self.opener.open(request, timeout=TIMEOUT_SECONDS) as response:
                return response.status, dict(response.headers.items()), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers.items()), error.read()
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise Failure(f"{method} {_redact(url)}: cannot reach the server ({reason}). "
                          f"Is it running? Start it with `make run`.") from None

    def post(self, path: str, record: dict) -> str:
        """POSTs `record` as a webhook does (the write token, if any, in the URL); returns
        the new push id."""
        url = self.url(path, **({"auth": self.write_token} if self.write_token else {}))
        for _ in range(RATE_LIMIT_ATTEMPTS):
            status, headers, body = self.request("POST", url, json.dumps(record).encode())
            if status != 429:
                break
            # Over the server's write rate limit: nothing was written; wait as told.
            retry_after = {k.lower(): v for k, v in headers.items()}.get("retry-after", "1")
            time.sleep(min(60, max(1, int(retry_after)) if retry_after.isdigit() else 1))
        if status != 200:
            raise Failure(f"POST {_redact(url)}: {status} {_error_text(body)}")
        return json.loads(body)["name"]

    def get(self, path: str, suffix: str = ".json", anonymous: bool = False,
            **params: str) -> tuple[int, dict[str, str], bytes]:
        """GETs `path` with the admin token, or without a credential if `anonymous`."""
        url = self.url(path, suffix, **params)
        return self.request("GET", url, token=None if anonymous else self.token)

    def read(self, path: str, suffix: str = ".json", **params: str) -> tuple[dict[str, str], bytes]:
        status, headers, body = self.get(path, suffix, **params)
        if status != 200:
            hint = " (is the admin token right?)" if status == 401 else ""
            raise Failure(f"GET {self.url(path, suffix, **params)}: {status} "
                          f"{_error_text(body)}{hint}")
        return headers, body


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _redact(url: str) -> str:
    return re.sub(r"(auth|access_token)=[^&]*", r"\1=…", url)


def _error_text(body: bytes) -> str:
    try:
        return json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        return body.decode(errors="replace")[:200]


# --- The production run ---------------------------------------------------------------


class Unit:
    """One device under test: an imp module with its MAC address and device id."""

    def __init__(self, rng: random.Random) -> None:
        self.mac = IMP_OUI + "%06x" % rng.getrandbits(24)
        # imp device ids are 16 hex digits; for modules like the imp003 they are the MAC
        # address behind a fixed prefix.
        self.device_id = "3000" + self.mac
        # The imp's own id: derived from the MAC address by impCloud, opaque to us.
        self.imp_id = "%016x" % rng.getrandbits(64)
        self.vbat = round(rng.uniform(3.18, 3.42), 3)
        self.rssi = rng.randint(-78, -41)
        self.led_ok = rng.random() > 0.08
        self.button_ok = rng.random() > 0.05
        if rng.random() < 0.1:
            self.vbat = round(rng.uniform(2.71, 2.95), 3)  # a weak cell

    @property
    def passed(self) -> bool:
        return self.led_ok and self.button_ok and self.vbat >= 3.0 and self.rssi >= -75

    def failures(self) -> list[str]:
        failed = []
        if not self.led_ok:
            failed.append("LED did not light")
        if not self.button_ok:
            failed.append("button not pressed within 10 s")
        if self.vbat < 3.0:
            failed.append(f"battery {self.vbat:.2f} V below 3.00 V")
        if self.rssi < -75:
            failed.append(f"WiFi RSSI {self.rssi} dBm below -75 dBm")
        return failed


SERVER_TIMESTAMP = {".sv": "timestamp"}


def testresult(unit: Unit) -> dict:
    """What the DUT agent posts once the device has run its factory tests (agent.nut)."""
    failed = unit.failures()
    return {
        "device_id": unit.device_id,
        "mac": unit.mac,
        "type": "testresult",
        "msg": "PASS: all 4 tests passed, blessing device" if not failed
               else "FAIL: " + ", ".join(failed),
        "success": not failed,
        "tests": {"button": unit.button_ok, "led": unit.led_ok,
                  "rssi": unit.rssi, "vbat": unit.vbat},
        "timestamp": SERVER_TIMESTAMP,
    }


def blessing(unit: Unit, product_group: str) -> dict:
    """What impCentral's Blessing webhook posts when a device has been blessed.

    impCentral documents `device_id` and `imp_id` in this webhook's body; the other fields
    are the ones all three lists share here, so that they export with the same columns.
    """
    return {
        "device_id": unit.device_id,
        "imp_id": unit.imp_id,
        "mac": unit.mac,
        "type": "blessing",
        "msg": f"device {unit.device_id} blessed into production device group {product_group}",
        "success": True,
        "timestamp": SERVER_TIMESTAMP,
    }


def blinkup(unit: Unit, rng: random.Random) -> dict:
    """What impCentral's BlinkUp webhook posts when an end user activates a device.

    impCentral documents `device_id`, `plan_id` and `token` (the enrollment token) in this
    webhook's body; the other fields are the ones all three lists share here.
    """
    return {
        "device_id": unit.device_id,
        "mac": unit.mac,
        "type": "blinkup",
        "msg": "end-user BlinkUp succeeded",
        "success": True,
        "plan_id": "%016x" % rng.getrandbits(64),
        "token": "%032x" % rng.getrandbits(128),
        "timestamp": SERVER_TIMESTAMP,
    }


def run_line(hearth: Hearth, devices: int, rng: random.Random) -> None:
    """Posts one production run: a test result per device, a blessing per pass, and later
    BlinkUps for some of the blessed devices."""
    fixture_mac = IMP_OUI + "%06x" % rng.getrandbits(24)
    product_group = "%08x-%04x-4%03x-8%03x-%012x" % (
        rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(12), rng.getrandbits(12),
        rng.getrandbits(48))
    blessed: list[Unit] = []
    print(f"Factory line: {devices} device{'s' if devices != 1 else ''} under test, "
          f"BlinkUp fixture {fixture_mac}")
    for _ in range(devices):
        unit = Unit(rng)
        key = hearth.post("/testresult", testresult(unit))
        verdict = "PASS" if unit.passed else "FAIL"
        print(f"  DUT agent    POST /testresult.json  {unit.device_id}  {verdict}  -> {key}")
        if unit.passed:
            key = hearth.post("/blessing", blessing(unit, product_group))
            blessed.append(unit)
            print(f"  impCentral   POST /blessing.json    {unit.device_id}  blessed -> {key}")
    # Later, in people's homes: some of the blessed devices are activated with BlinkUp.
    activated = [unit for unit in blessed if rng.random() < 0.6] or blessed[:1]
    for unit in activated:
        key = hearth.post("/blinkup", blinkup(unit, rng))
        print(f"  impCentral   POST /blinkup.json     {unit.device_id}  activated -> {key}")


def read_back(hearth: Hearth) -> None:
    """Shows that anonymous reads are refused and counts the records with the token."""
    status, _, body = hearth.get("/testresult", anonymous=True)
    answer = "200 (the server's rules let anyone read)" if status == 200 else \
        f"{status} {_error_text(body)!r}"
    print(f"\nAnonymous GET /testresult.json: {answer}")
    print("Read back with the admin token:")
    for name in ("testresult", "blessing", "blinkup"):
        _, body = hearth.read(f"/{name}", shallow="true")
        count = len(json.loads(body) or {})
        detail = ""
        if name == "testresult":
            _, body = hearth.read(f"/{name}", orderBy='"success"', equalTo="false")
            failed = len(json.loads(body) or {})
            detail = f"  ({count - failed} passed, {failed} failed)"
        print(f"  /{name:<11} {count:>4} records{detail}")


def export(hearth: Hearth, out: Path) -> tuple[Path, Path]:
    """Exports /testresult as CSV (named as the server's Content-Disposition says) and as
    JSON into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    headers, csv_body = hearth.read("/testresult", ".csv", download="testresult.csv")
    disposition = {k.lower(): v for k, v in headers.items()}.get("content-disposition", "")
    match = re.search(r'filename="([^"]+)"', disposition)
    csv_path = out / Path(match.group(1) if match else "testresult.csv").name
    csv_path.write_bytes(csv_body)
    _, json_body = hearth.read("/testresult")
    json_path = out / "testresult.json"
    json_path.write_bytes(json_body)

    rows = list(csv.reader(io.StringIO(csv_body.decode("utf-8"), newline="")))
    records = json.loads(json_body) or {}
    print(f"\nExported /testresult:")
    print(f"  {csv_path}  ({len(rows) - 1} rows; columns: {', '.join(rows[0]) if rows else '-'})")
    print(f"  {json_path}  ({len(records)} records)")
    return csv_path, json_path


# --- Command line ---------------------------------------------------------------------


def find_token(args: argparse.Namespace) -> str | None:
    """The admin token from --token, HEARTH_TOKEN or <data-dir>/admin-token; None if none."""
    if args.token:
        return args.token.strip()
    if os.environ.get("HEARTH_TOKEN"):
        return os.environ["HEARTH_TOKEN"].strip()
    candidates = [Path(args.data_dir) / "admin-token"]
    if not Path(args.data_dir).is_absolute():
        # Also the repository's own hearth-data, so the script works from any directory.
        candidates.append(Path(__file__).resolve().parents[2] / args.data_dir / "admin-token")
    for candidate in candidates:
        try:
            token = candidate.read_text().splitlines()[0].strip()
        except (OSError, IndexError):
            continue
        if token:
            return token
    tried = ", ".join(str(candidate) for candidate in candidates)
    print(f"run.py: no admin token. Pass --token, set HEARTH_TOKEN, or point --data-dir at "
          f"the server's data directory (tried {tried}).", file=sys.stderr)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Post Blessing, BlinkUp and testresult records to Hearth as impCentral "
                    "and the DUT agents would, read them back and export /testresult.")
    parser.add_argument("--url", default=os.environ.get("HEARTH_URL", DEFAULT_URL),
                        help="the server (HEARTH_URL; default %(default)s)")
    parser.add_argument("--token", help="the admin token (default: HEARTH_TOKEN, "
                        "then <data-dir>/admin-token)")
    parser.add_argument("--data-dir", default="hearth-data",
                        help="the server's data directory, for its admin-token file "
                             "(default %(default)s)")
    parser.add_argument("--write-token", default=os.environ.get("HEARTH_WRITE_TOKEN"),
                        help="post with this token in the URL (?auth=), as the webhook URLs of "
                             "the token setup carry it (HEARTH_WRITE_TOKEN; default: anonymous)")
    parser.add_argument("--namespace", help="write to this namespace (?ns=) instead of the "
                        "server's default one")
    parser.add_argument("--out", default="factory-export", type=Path,
                        help="where to write testresult.csv and testresult.json "
                             "(default ./%(default)s)")
    parser.add_argument("--devices", type=int, default=12,
                        help="devices under test in the run (default %(default)s)")
    parser.add_argument("--seed", type=int, default=None,
                        help="random seed, for a repeatable run (default: a new run each time)")
    args = parser.parse_args(argv)
    if args.devices < 1:
        parser.error("--devices must be at least 1")
    token = find_token(args)
    if token is None:
        return 2

    hearth = Hearth(args.url, token, args.namespace, args.write_token)
    rng = random.Random(args.seed)
    try:
        # Check the server and the token before posting anything.
        hearth.read("/testresult", shallow="true")
        run_line(hearth, args.devices, rng)
        read_back(hearth)
        export(hearth, args.out)
    except Failure as error:
        print(f"run.py: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
