"""The factory-webhook setup on a public address (Examples/factory-webhooks, `make run`).

* Under the rules and write limits `make run` serves with (read from the Makefile), anonymous
  callers may only append validated records to /blessing, /blinkup and /testresult: every
  other write is refused and changes nothing; reads need a credential; naming a new
  namespace is refused; `/.metrics` needs the admin token.
* The token-in-URL setup (database.rules.token.json): `hearth token --uid webhooks` mints the
  credential, run.py posts with it in the URLs, anonymous writes are refused, the webhooks
  token cannot read, and rotating the signing secret retires the old token.
* Write rate limits (429 with Retry-After, nothing written) and trusted proxies.
* `--metrics-address`: a listener of its own for Prometheus.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import time
from pathlib import Path

import pytest
import requests

from compat_helpers import HOST, assert_push_id, free_port, local_session
from test_examples import RUN_PY, describe, run_example

REPO_ROOT = Path(__file__).resolve().parents[2]
FACTORY_DIR = REPO_ROOT / "Examples" / "factory-webhooks"
APPEND_ONLY_RULES = FACTORY_DIR / "database.rules.json"
TOKEN_RULES = FACTORY_DIR / "database.rules.token.json"
OPEN_RULES = FACTORY_DIR / "database.rules.open.json"
DENIED = "Permission denied"


def make_run_arguments() -> list[str]:
    """The rules and write limits of `make run`, as the Makefile gives them."""
    makefile = (REPO_ROOT / "Makefile").read_text()
    values = dict(re.findall(r"^(RULES|WRITE_RATE|WRITE_BURST)\s*\?=\s*(\S+)", makefile, re.M))
    assert set(values) == {"RULES", "WRITE_RATE", "WRITE_BURST"}, values
    recipe = re.search(r"^run:.*\n((?:\t.*\n)+)", makefile, re.M).group(1)
    assert "--rules $(RULES)" in recipe and "--write-rate-limit $(WRITE_RATE)" in recipe
    assert "--write-rate-burst $(WRITE_BURST)" in recipe
    return ["--rules", str(REPO_ROOT / values["RULES"]), "--write-rate-limit", values["WRITE_RATE"],
            "--write-rate-burst", values["WRITE_BURST"]]


def load_run_py():
    """Examples/factory-webhooks/run.py as a module, for the records it makes."""
    spec = importlib.util.spec_from_file_location("factory_run", RUN_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FACTORY = load_run_py()


def records(seed: int = 7) -> dict[str, dict]:
    """One record of each list, as the DUT agent and impCentral's webhooks post them."""
    import random
    rng = random.Random(seed)
    unit = FACTORY.Unit(rng)
    return {
        "testresult": FACTORY.testresult(unit),
        "blessing": FACTORY.blessing(unit, "group"),
        "blinkup": FACTORY.blinkup(unit, rng),
    }


def start(hearth_launcher, tmp_path: Path, name: str, args: list[str], emulator: bool = False):
    data_dir, log_dir = tmp_path / f"{name}-data", tmp_path / f"{name}-logs"
    data_dir.mkdir()
    log_dir.mkdir()
    server = hearth_launcher(data_dir, log_dir, emulator=emulator, extra_args=args, log_name=name)
    return server, (data_dir / "admin-token").read_text().strip()


@pytest.fixture
def public_server(hearth_launcher, tmp_path):
    """A server as `make run` starts it: its rules, its write limits, no emulator."""
    return start(hearth_launcher, tmp_path, "public", make_run_arguments())


def error_of(response) -> str:
    return response.json()["error"]


def test_anonymous_callers_may_only_append_valid_records(public_server):
    server, admin = public_server
    client = local_session()
    base = server.base_url
    admin_headers = {"Authorization": f"Bearer {admin}"}

    def snapshot():
        return client.get(f"{base}/.json", headers=admin_headers, timeout=10).json()

    # POST to each list works without a credential, and so does a PUT of a new child.
    names = {}
    for path, record in records().items():
        response = client.post(f"{base}/{path}.json", json=record, timeout=10)
        assert response.status_code == 200, response.text
        names[path] = response.json()["name"]
        assert_push_id(names[path])
    fresh = dict(records(8)["blessing"])
    assert client.put(f"{base}/blessing/by-hand-1.json", json=fresh, timeout=10).status_code == 200
    # print=silent, as agent.nut posts.
    silent = client.post(f"{base}/testresult.json", params={"print": "silent"}, json=records(9)["testresult"], timeout=10)
    assert silent.status_code == 204
    stored = snapshot()
    assert set(stored) == {"blessing", "blinkup", "testresult"}
    assert len(stored["testresult"]) == 2 and len(stored["blessing"]) == 2
    assert isinstance(stored["blessing"][names["blessing"]]["timestamp"], int)

    # Everything else is refused and changes nothing.
    blessing = f"{base}/blessing/{names['blessing']}"
    refused = [
        ("PUT over an existing record", "PUT", f"{blessing}.json", records(10)["blessing"]),
        ("PUT over one field", "PUT", f"{blessing}/success.json", False),
        ("PATCH of a record", "PATCH", f"{blessing}.json", {"success": False}),
        ("PATCH adding a field", "PATCH", f"{blessing}.json", {"msg": "changed"}),
        ("PATCH of the list", "PATCH", f"{base}/blessing.json", {f"{names['blessing']}/success": False}),
        ("DELETE of a record", "DELETE", f"{blessing}.json", None),
        ("DELETE of a field", "DELETE", f"{blessing}/imp_id.json", None),
        ("DELETE of a list", "DELETE", f"{base}/blessing.json", None),
        ("DELETE of everything", "DELETE", f"{base}/.json", None),
        ("PUT of a whole list", "PUT", f"{base}/blessing.json", {"x": records(11)["blessing"]}),
        ("PUT of a null record", "PUT", f"{base}/blessing/nothing.json", None),
        ("POST outside the lists", "POST", f"{base}/other.json", records(12)["blessing"]),
        ("PUT outside the lists", "PUT", f"{base}/config.json", {"line": "B"}),
        ("PUT at the root", "PUT", f"{base}/.json", {"blessing": None}),
    ]
    for description, method, url, body in refused:
        data = None if method == "DELETE" else json.dumps(body).encode()
        response = client.request(method, url, data=data, timeout=10)
        assert response.status_code == 401, (description, response.status_code, response.text)
        assert error_of(response) == DENIED, description
    assert snapshot() == stored

    # Records of the wrong shape.
    good = records(13)
    wrong_shapes = {
        "a blessing without imp_id": ("blessing", {k: v for k, v in good["blessing"].items() if k != "imp_id"}),
        "a blinkup without token": ("blinkup", {k: v for k, v in good["blinkup"].items() if k != "token"}),
        "a test result without success": ("testresult", {k: v for k, v in good["testresult"].items() if k != "success"}),
        "a device_id that is no imp id": ("blessing", {**good["blessing"], "device_id": "not-hex"}),
        "a number for a string": ("blinkup", {**good["blinkup"], "plan_id": 12}),
        "a string for a boolean": ("testresult", {**good["testresult"], "success": "yes"}),
        "an unknown field": ("blessing", {**good["blessing"], "extra": 1}),
        "an unknown test": ("testresult", {**good["testresult"], "tests": {"led": True, "shell": "rm"}}),
        "tests that are not an object": ("testresult", {**good["testresult"], "tests": 5}),
        "an out-of-range reading": ("testresult", {**good["testresult"], "tests": {"rssi": 40}}),
        "another list's type": ("blessing", {**good["blessing"], "type": "blinkup"}),
        "a message over 500 characters": ("blessing", {**good["blessing"], "msg": "x" * 501}),
        "a client's own timestamp": ("blessing", {**good["blessing"], "timestamp": 1}),
        "a string instead of a record": ("blessing", "hello"),
    }
    for description, (path, body) in wrong_shapes.items():
        response = client.post(f"{base}/{path}.json", json=body, timeout=10)
        assert response.status_code == 401, (description, response.status_code, response.text)
        assert error_of(response) == DENIED, description
    # Bodies that are not JSON at all: 400, and nothing written.
    bad = client.post(f"{base}/blessing.json", data=b"{not json", timeout=10)
    assert bad.status_code == 400 and "error" in bad.json()
    assert snapshot() == stored

    # Reads need a credential; the admin reads (and may still fix or delete).
    assert client.get(f"{base}/blessing.json", timeout=10).status_code == 401
    assert client.get(f"{base}/blessing.json", headers={"Accept": "text/event-stream"}, timeout=10).status_code == 401
    assert client.delete(f"{base}/blessing/by-hand-1.json", headers=admin_headers, timeout=10).status_code == 200


def test_anonymous_namespace_creation_and_metrics_are_refused(public_server):
    server, admin = public_server
    client = local_session()
    base = server.base_url
    for response in (
        client.put(f"{base}/x.json", params={"ns": "anything"}, json=1, timeout=10),
        client.post(f"{base}/blessing.json", params={"ns": "anything"}, json=records()["blessing"], timeout=10),
        # A three-label Host names a namespace too.
        client.post(f"{base}/blessing.json", headers={"Host": "anything.example.com"}, json=records()["blessing"],
                    timeout=10),
    ):
        assert response.status_code == 404, response.text
        assert error_of(response).startswith('Database not found: there is no database "anything"')
    assert not (server.data_dir / "anything").exists()
    listed = client.get(f"{base}/.inspect/databases.json", headers={"Authorization": f"Bearer {admin}"}, timeout=10)
    assert "anything" not in listed.text
    # The admin may create one; then its rules apply to everyone.
    assert client.put(f"{base}/x.json", params={"ns": "line-b", "auth": admin}, json=1, timeout=10).status_code == 200
    assert client.post(f"{base}/blessing.json", params={"ns": "line-b"}, json=records()["blessing"],
                       timeout=10).status_code == 200

    metrics = client.get(f"{base}/.metrics", timeout=10)
    assert metrics.status_code == 401
    assert "/.metrics needs the admin token" in error_of(metrics)
    scraped = client.get(f"{base}/.metrics", headers={"Authorization": f"Bearer {admin}"}, timeout=10)
    assert scraped.status_code == 200 and "hearth_http_requests_total" in scraped.text


def test_the_open_rules_stay_available_as_a_labelled_alternative(hearth_launcher, tmp_path):
    """database.rules.open.json is the seed's plain `auth == null` setup, marked unsafe."""
    text = OPEN_RULES.read_text()
    assert "UNSAFE ON A PUBLIC ADDRESS" in text
    server, _ = start(hearth_launcher, tmp_path, "open", ["--rules", str(OPEN_RULES)])
    client = local_session()
    assert client.put(f"{server.base_url}/anything.json", json={"a": 1}, timeout=10).status_code == 200
    assert client.delete(f"{server.base_url}/anything.json", timeout=10).status_code == 200
    assert client.get(f"{server.base_url}/anything.json", timeout=10).status_code == 401


def mint(hearth_binary: Path, uid: str, secret_file: Path, *extra: str) -> str:
    result = subprocess.run(
        [str(hearth_binary), "token", "--uid", uid, "--secret-file", str(secret_file), *extra],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_a_webhooks_token_in_the_url_end_to_end(hearth_binary, hearth_launcher, tmp_path):
    """The stronger setup: only the `webhooks` identity appends, with its token in the URLs
    (run.py --write-token); it cannot read; other users read; rotating the secret retires
    the old token."""
    old_secret, new_secret = tmp_path / "jwt-secret-1", tmp_path / "jwt-secret-2"
    old_secret.write_text("an-old-secret-for-the-webhook-token-0123456789\n")
    new_secret.write_text("a-new-secret-for-the-webhook-token-9876543210\n")
    webhooks = mint(hearth_binary, "webhooks", old_secret, "--expires-in", "365d")
    reader = mint(hearth_binary, "line-manager", old_secret)
    # A year: the token's exp is about 365 days after its iat.
    import base64
    payload = json.loads(base64.urlsafe_b64decode(webhooks.split(".")[1] + "=="))
    assert payload["uid"] == "webhooks" and payload["exp"] - payload["iat"] == 365 * 86400

    data_dir, log_dir = tmp_path / "token-data", tmp_path / "token-logs"
    data_dir.mkdir()
    log_dir.mkdir()
    rules_args = ["--rules", str(TOKEN_RULES)]
    server = hearth_launcher(data_dir, log_dir, emulator=False, log_name="token",
                             extra_args=[*rules_args, "--jwt-secret-file", str(old_secret)])
    admin = (data_dir / "admin-token").read_text().strip()
    base = server.base_url
    client = local_session()

    result = run_example([str(RUN_PY), "--url", base, "--token", admin, "--write-token", webhooks,
                          "--out", str(tmp_path / "export"), "--devices", "6", "--seed", "5"], cwd=tmp_path)
    assert result.returncode == 0, describe(result)
    assert webhooks not in result.stdout + result.stderr, "the token must not be printed"
    stored = client.get(f"{base}/testresult.json", params={"auth": admin}, timeout=10).json()
    assert len(stored) == 6

    good = records(21)
    # Anonymous writes are refused now; the webhooks token still only appends.
    assert client.post(f"{base}/blessing.json", json=good["blessing"], timeout=10).status_code == 401
    key = next(iter(stored))
    assert client.put(f"{base}/testresult/{key}.json", params={"auth": webhooks}, json=good["testresult"],
                      timeout=10).status_code == 401
    assert client.delete(f"{base}/testresult.json", params={"auth": webhooks}, timeout=10).status_code == 401
    assert client.post(f"{base}/blessing.json", params={"auth": webhooks}, json={"device_id": "x"},
                       timeout=10).status_code == 401
    # The webhooks token cannot read; another user can; a user cannot write.
    assert client.get(f"{base}/testresult.json", params={"auth": webhooks}, timeout=10).status_code == 401
    assert client.get(f"{base}/testresult.json", params={"auth": reader}, timeout=10).json() == stored
    assert client.post(f"{base}/blessing.json", params={"auth": reader}, json=good["blessing"],
                       timeout=10).status_code == 401
    assert client.get(f"{base}/testresult.json", params={"auth": admin}, timeout=10).json() == stored

    # Rotation, step 1: the server trusts both secrets; a token signed with the new one works
    # beside the old one while the webhook URLs are changed.
    server.process.terminate()
    server.process.wait(timeout=15)
    rotated = mint(hearth_binary, "webhooks", new_secret, "--expires-in", "365d")
    server = hearth_launcher(data_dir, log_dir, emulator=False, log_name="token-both",
                             extra_args=[*rules_args, "--jwt-secret-file", str(new_secret),
                                         "--jwt-secret-file", str(old_secret)])
    base = server.base_url
    for token in (webhooks, rotated):
        assert client.post(f"{base}/blessing.json", params={"auth": token}, json=good["blessing"],
                           timeout=10).status_code == 200
    # Step 2: the old secret is dropped; its tokens are refused.
    server.process.terminate()
    server.process.wait(timeout=15)
    server = hearth_launcher(data_dir, log_dir, emulator=False, log_name="token-new",
                             extra_args=[*rules_args, "--jwt-secret-file", str(new_secret)])
    base = server.base_url
    retired = client.post(f"{base}/blessing.json", params={"auth": webhooks}, json=good["blessing"], timeout=10)
    assert retired.status_code == 401 and "signature" in error_of(retired).lower()
    assert client.post(f"{base}/blessing.json", params={"auth": rotated}, json=good["blessing"],
                       timeout=10).status_code == 200
    blessings = client.get(f"{base}/blessing.json", params={"auth": admin}, timeout=10).json()
    assert len(blessings) == len([r for r in stored.values() if r["success"]]) + 3


def test_a_burst_over_the_write_limit_gets_429_and_the_data_stays_consistent(hearth_launcher, tmp_path):
    server, admin = start(hearth_launcher, tmp_path, "limited",
                          ["--rules", str(APPEND_ONLY_RULES), "--write-rate-limit", "0.001", "--write-rate-burst", "5"])
    client = local_session()
    base = server.base_url
    accepted, refused = [], []
    for index in range(20):
        response = client.post(f"{base}/testresult.json", json=records(100 + index)["testresult"], timeout=10)
        if response.status_code == 200:
            accepted.append(response.json()["name"])
        else:
            refused.append(response)
    assert len(accepted) == 5 and len(refused) == 15
    for response in refused:
        assert response.status_code == 429
        assert int(response.headers["Retry-After"]) >= 1
        assert error_of(response).startswith("Too many writes")
    stored = client.get(f"{base}/testresult.json", params={"auth": admin}, timeout=10).json()
    assert sorted(stored) == sorted(accepted)
    # Reads and the admin are not limited; refusals are counted.
    assert client.put(f"{base}/testresult/fixed.json", params={"auth": admin}, json=records(1)["testresult"],
                      timeout=10).status_code == 200
    metrics = client.get(f"{base}/.metrics", params={"auth": admin}, timeout=10).text
    assert 'hearth_limit_refusals_total{reason="write_rate"} 15' in metrics


def test_run_py_waits_as_retry_after_says(hearth_launcher, tmp_path):
    """A sender over the limit is told when to come back; run.py waits and gets every record in."""
    server, admin = start(hearth_launcher, tmp_path, "retrying",
                          ["--rules", str(APPEND_ONLY_RULES), "--write-rate-limit", "2", "--write-rate-burst", "1"])
    result = run_example([str(RUN_PY), "--url", server.base_url, "--token", admin, "--out", str(tmp_path / "out"),
                          "--devices", "3", "--seed", "3"], cwd=tmp_path)
    assert result.returncode == 0, describe(result)
    client = local_session()
    assert len(client.get(f"{server.base_url}/testresult.json", params={"auth": admin}, timeout=10).json()) == 3
    metrics = client.get(f"{server.base_url}/.metrics", params={"auth": admin}, timeout=10).text
    refusals = re.search(r'hearth_limit_refusals_total\{reason="write_rate"\} (\d+)', metrics)
    assert refusals and int(refusals.group(1)) > 0, "the run should have been over the limit at times"


def test_a_forwarded_address_is_honoured_only_from_a_trusted_proxy(hearth_launcher, tmp_path):
    limits = ["--rules", str(OPEN_RULES), "--write-rate-limit", "0.01", "--write-rate-burst", "1", "--log-level", "debug"]
    trusting, _ = start(hearth_launcher, tmp_path, "trusting", [*limits, "--trusted-proxy", "127.0.0.0/8"])
    client = local_session()

    def put(server, path, forwarded=None, header="X-Forwarded-For"):
        headers = {header: forwarded} if forwarded else {}
        return client.put(f"{server.base_url}/{path}.json", json=1, headers=headers, timeout=10).status_code

    # Behind a trusted proxy, each forwarded client has its own allowance.
    assert put(trusting, "a", "198.51.100.7") == 200
    assert put(trusting, "a", "198.51.100.7") == 429
    assert put(trusting, "b", "203.0.113.9, 198.51.100.8") == 200
    # A client cannot escape its limit by writing its own X-Forwarded-For in front.
    assert put(trusting, "b", "203.0.113.10, 198.51.100.8") == 429
    # The Forwarded header is not the one configured: ignored, the proxy is the client.
    assert put(trusting, "c", "for=192.0.2.44", header="Forwarded") == 200
    assert put(trusting, "c", "for=192.0.2.45", header="Forwarded") == 429
    # The request log names the real client.
    assert trusting.wait_for_log('client=198.51.100.7') or trusting.wait_for_log('"client":"198.51.100.7"')

    # From an address that is not a trusted proxy the header is ignored.
    untrusting, _ = start(hearth_launcher, tmp_path, "untrusting", limits)
    assert put(untrusting, "a", "198.51.100.7") == 200
    assert put(untrusting, "a", "198.51.100.99") == 429

    # The Forwarded header, when that is the one configured.
    rfc, _ = start(hearth_launcher, tmp_path, "forwarded",
                   [*limits, "--trusted-proxy", "127.0.0.1", "--proxy-header", "forwarded"])
    assert put(rfc, "a", 'for="[2001:db8::7]:4711";proto=https', header="Forwarded") == 200
    assert put(rfc, "a", "for=192.0.2.1", header="Forwarded") == 200
    assert put(rfc, "a", "for=192.0.2.1", header="Forwarded") == 429
    # X-Forwarded-For is not believed here: the proxy is the client.
    assert put(rfc, "a", "192.0.2.2") == 200
    assert put(rfc, "a", "192.0.2.3") == 429


def test_metrics_on_their_own_address(hearth_launcher, tmp_path):
    port = free_port()
    server, admin = start(hearth_launcher, tmp_path, "metrics",
                          ["--rules", str(APPEND_ONLY_RULES), "--metrics-address", f"{HOST}:{port}"])
    client = local_session()
    assert server.wait_for_log("/.metrics")
    deadline = time.monotonic() + 10
    while True:  # the metrics listener starts beside the main one
        try:
            scraped = client.get(f"http://{HOST}:{port}/.metrics", timeout=10)
            break
        except requests.ConnectionError:
            assert time.monotonic() < deadline, "the metrics address never answered"
            time.sleep(0.1)
    assert scraped.status_code == 200
    assert scraped.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "hearth_http_requests_total" in scraped.text
    assert client.get(f"http://{HOST}:{port}/.health", timeout=10).json() == {"status": "ok"}
    # Only metrics there: no data, no console.
    for path in ("/blessing.json", "/.json", "/.console/", "/.inspect/databases.json"):
        assert client.get(f"http://{HOST}:{port}{path}", params={"auth": admin}, timeout=10).status_code == 404
    assert client.put(f"http://{HOST}:{port}/.metrics", data=b"1", timeout=10).status_code == 405
    # The main port still wants the admin token.
    assert client.get(f"{server.base_url}/.metrics", timeout=10).status_code == 401


@pytest.mark.parametrize("args, message", [
    (["--write-rate-limit=-1"], "write-rate-limit must be"),
    (["--write-rate-burst", "0"], "write-rate-burst must be at least 1"),
    (["--trusted-proxy", "proxy.example"], "trusted-proxy proxy.example is not an IP address"),
    (["--trusted-proxy", "10.0.0.0/40"], "trusted-proxy 10.0.0.0/40 is not an IP address"),
    (["--proxy-header", "x-real-ip"], "proxy-header must be x-forwarded-for or forwarded"),
    (["--metrics-address", "9091"], "metrics-address must be host:port"),
])
def test_bad_settings_stop_start_up(hearth_binary, tmp_path, args, message):
    result = subprocess.run(
        [str(hearth_binary), "serve", "--in-memory", "--port", "0", *args],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 2, result
    assert message in result.stderr


@pytest.mark.parametrize("value", ["0", "-5", "5x", "d", "99999999999d"])
def test_hearth_token_refuses_bad_lifetimes(hearth_binary, tmp_path, value):
    secret = tmp_path / "secret"
    secret.write_text("a-secret-for-the-lifetime-test-0123456789")
    result = subprocess.run(
        [str(hearth_binary), "token", "--uid", "webhooks", "--secret-file", str(secret), f"--expires-in={value}"],
        capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "--expires-in must be" in result.stderr
