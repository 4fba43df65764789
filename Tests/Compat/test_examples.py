"""The runnable examples in Examples/, run end to end against live servers.

* ``Examples/factory-webhooks/run.py`` against a production-mode server (no `--emulator`)
  under ``Examples/factory-webhooks/database.rules.json``, reading with the admin token the
  server generated in its data directory: the records it posts anonymously, what it reads
  back, and the CSV and JSON exports it writes, compared with the server's data.
* ``Examples/python/listen_and_write.py`` (firebase-admin) against an `--emulator` server:
  the exit status, the listener's events and the data left behind; and in the SDK's
  production mode, through a TLS-terminating relay (a self-signed certificate made here) to
  a server without `--emulator`, with Hearth's admin token as the SDK's access token.

Each example runs as a separate process (``sys.executable``, so the suite's virtualenv), the
way a reader would run it, with proxy variables pointed away from the loopback server.
"""

from __future__ import annotations

import csv
import datetime
import io
import ipaddress
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from compat_helpers import HOST

REPO_ROOT = Path(__file__).resolve().parents[2]
FACTORY_DIR = REPO_ROOT / "Examples" / "factory-webhooks"
FACTORY_RULES = FACTORY_DIR / "database.rules.json"
RUN_PY = FACTORY_DIR / "run.py"
LISTEN_AND_WRITE = REPO_ROOT / "Examples" / "python" / "listen_and_write.py"
EXAMPLE_TIMEOUT_SECONDS = 120
HEX16 = re.compile(r"[0-9a-f]{16}")
HEX12 = re.compile(r"[0-9a-f]{12}")


def example_env(**overrides: str) -> dict[str, str]:
    """The environment for an example: no stray Hearth settings, no proxy for loopback."""
    env = {name: value for name, value in os.environ.items()
           if name not in ("HEARTH_URL", "HEARTH_TOKEN", "HEARTH_DATABASE_URL",
                           "FIREBASE_DATABASE_EMULATOR_HOST")}
    for name in ("NO_PROXY", "no_proxy"):
        env[name] = ",".join(filter(None, [env.get(name), HOST, "localhost"]))
    env.update(overrides)
    return env


def run_example(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=example_env(**env), capture_output=True,
        text=True, timeout=EXAMPLE_TIMEOUT_SECONDS, stdin=subprocess.DEVNULL)


def describe(result: subprocess.CompletedProcess) -> str:
    return (f"exit status {result.returncode}\n--- stdout ---\n{result.stdout}"
            f"\n--- stderr ---\n{result.stderr}")


def rest(server, path: str, token: str | None, suffix: str = ".json",
         **params: str) -> requests.Response:
    with requests.Session() as session:
        session.trust_env = False
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return session.get(f"{server.base_url}/{path.strip('/')}{suffix}", params=params,
                           headers=headers, timeout=30)


def leaves(value, prefix: str = "") -> dict[str, object]:
    """The leaf paths of a JSON value, as the CSV export names its columns."""
    if isinstance(value, dict):
        children = value.items()
    elif isinstance(value, list):
        children = ((str(index), item) for index, item in enumerate(value))
    else:
        return {prefix or ".value": value}
    found: dict[str, object] = {}
    for key, child in children:
        found.update(leaves(child, f"{prefix}/{key}" if prefix else str(key)))
    return found


def csv_field(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --------------------------------------------------------------------------------------
# Examples/factory-webhooks
# --------------------------------------------------------------------------------------


@pytest.fixture
def factory_server(hearth_launcher, tmp_path):
    """A production-mode server under the factory-webhook rules, with a generated token."""
    data_dir = tmp_path / "hearth-data"
    log_dir = tmp_path / "logs"
    data_dir.mkdir()
    log_dir.mkdir()
    server = hearth_launcher(data_dir, log_dir, emulator=False,
                             extra_args=["--rules", str(FACTORY_RULES)], log_name="factory")
    token_file = data_dir / "admin-token"
    assert token_file.is_file(), "the server did not generate <data-dir>/admin-token"
    return server, token_file.read_text().strip()


def test_factory_webhooks_run_posts_reads_back_and_exports(factory_server, tmp_path):
    """`run.py --data-dir <dir> --out <dir>`: 15 DUT test results, a blessing for each
    pass, BlinkUps for some blessed devices, all posted anonymously; the exports hold
    exactly the server's /testresult, as CSV (`key` first, one column per leaf path, one
    row per record) and as JSON."""
    server, token = factory_server
    out = tmp_path / "export"
    result = run_example(
        [str(RUN_PY), "--url", server.base_url, "--data-dir", str(server.data_dir),
         "--out", str(out), "--devices", "15", "--seed", "2024"], cwd=tmp_path)
    assert result.returncode == 0, describe(result)

    # The rules were in force: the data cannot be read anonymously.
    anonymous = rest(server, "/testresult", None)
    assert anonymous.status_code == 401, anonymous.text
    assert "Anonymous GET /testresult.json: 401 'Permission denied'" in result.stdout

    # What the server holds.
    testresults = rest(server, "/testresult", token).json()
    blessings = rest(server, "/blessing", token).json()
    blinkups = rest(server, "/blinkup", token).json()
    assert len(testresults) == 15
    for record in testresults.values():
        assert record["type"] == "testresult"
        assert HEX16.fullmatch(record["device_id"]) and HEX12.fullmatch(record["mac"])
        assert record["device_id"].endswith(record["mac"])
        assert isinstance(record["success"], bool) and record["msg"]
        assert isinstance(record["timestamp"], int)  # {".sv": "timestamp"} was resolved
        assert set(record["tests"]) == {"button", "led", "rssi", "vbat"}
    passed = {r["device_id"] for r in testresults.values() if r["success"]}
    assert 0 < len(passed) < 15, "the seeded run should have passes and failures"
    assert {r["device_id"] for r in blessings.values()} == passed
    assert all(r["type"] == "blessing" and r["success"] is True for r in blessings.values())
    assert blinkups and {r["device_id"] for r in blinkups.values()} <= passed
    for record in blinkups.values():
        assert record["type"] == "blinkup" and HEX16.fullmatch(record["plan_id"])
        assert isinstance(record["timestamp"], int)

    # What it printed as read back.
    failed = 15 - len(passed)
    assert re.search(rf"/testresult\s+15 records\s+\({len(passed)} passed, {failed} failed\)",
                     result.stdout), result.stdout
    assert re.search(rf"/blessing\s+{len(blessings)} records", result.stdout), result.stdout
    assert re.search(rf"/blinkup\s+{len(blinkups)} records", result.stdout), result.stdout

    # The CSV export.
    csv_bytes = (out / "testresult.csv").read_bytes()
    assert csv_bytes.endswith(b"\r\n") and b"\n" not in csv_bytes.replace(b"\r\n", b"")
    rows = list(csv.reader(io.StringIO(csv_bytes.decode("utf-8"), newline="")))
    header, body = rows[0], rows[1:]
    assert header[0] == "key"
    expected_columns: list[str] = []
    for key in sorted(testresults):  # push ids: key order is creation order
        for column in leaves(testresults[key]):
            if column not in expected_columns:
                expected_columns.append(column)
    assert header[1:] == expected_columns
    assert len(body) == 15
    assert [row[0] for row in body] == sorted(testresults)
    for row in body:
        assert len(row) == len(header)
        record = leaves(testresults[row[0]])
        for column, field in zip(header[1:], row[1:]):
            value = record.get(column)
            if value is None:
                assert field == "", (row[0], column)
            elif isinstance(value, float):
                assert float(field) == value, (row[0], column)
            else:
                assert field == csv_field(value), (row[0], column)
    # Messages hold commas, so they are quoted (RFC 4180) and still read back whole.
    assert b',"PASS: all 4 tests passed, blessing device",' in csv_bytes

    # The JSON export: the same records, keyed the same way.
    exported = json.loads((out / "testresult.json").read_text(encoding="utf-8"))
    assert exported == testresults
    assert sorted(exported) == [row[0] for row in body]

    # The CSV download the script asked for is named by the server.
    download = rest(server, "/testresult", token, ".csv", download="testresult.csv")
    assert download.headers["Content-Disposition"] == 'attachment; filename="testresult.csv"'
    assert download.headers["Content-Type"].startswith("text/csv")
    assert download.content == csv_bytes


def test_factory_webhooks_run_takes_url_and_token_from_the_environment(factory_server, tmp_path):
    """HEARTH_URL and HEARTH_TOKEN replace the flags; a run adds to what is there. Without
    any token the script stops before posting anything (exit status 2); with a wrong one
    it stops at its first read (exit status 1)."""
    server, token = factory_server
    out = tmp_path / "export"

    missing = run_example([str(RUN_PY), "--out", str(out), "--data-dir", str(tmp_path / "none")],
                          cwd=tmp_path, HEARTH_URL=server.base_url)
    assert missing.returncode == 2, describe(missing)
    assert "no admin token" in missing.stderr
    wrong = run_example([str(RUN_PY), "--out", str(out), "--token", "0" * 64], cwd=tmp_path,
                        HEARTH_URL=server.base_url)
    assert wrong.returncode == 1, describe(wrong)
    assert "401" in wrong.stderr
    assert rest(server, "/testresult", token).json() is None, "nothing may have been posted"

    for run in range(2):
        result = run_example([str(RUN_PY), "--out", str(out), "--devices", "3"], cwd=tmp_path,
                             HEARTH_URL=server.base_url, HEARTH_TOKEN=token)
        assert result.returncode == 0, describe(result)
    testresults = rest(server, "/testresult", token).json()
    assert len(testresults) == 6
    rows = list(csv.reader(io.StringIO((out / "testresult.csv").read_text(encoding="utf-8"),
                                       newline="")))
    assert rows[0][0] == "key" and len(rows) == 1 + 6
    assert json.loads((out / "testresult.json").read_text(encoding="utf-8")) == testresults


def test_factory_webhooks_agent_posts_where_run_py_does():
    """agent.nut (for reading only) posts the same kind of record, to the same list, with
    the same server timestamp, without a credential unless its HEARTH_TOKEN is set (then
    in the URL, as the webhook token setup wants it)."""
    agent = (FACTORY_DIR / "agent.nut").read_text(encoding="utf-8")
    assert 'postToHearth("/testresult", record)' in agent
    assert "http.post(hearthURL(path), headers, body).sendasync(" in agent
    assert '"timestamp": { ".sv": "timestamp" }' in agent
    assert 'const HEARTH_TOKEN = "";' in agent
    assert 'if (HEARTH_TOKEN != "") url += "&auth=" + HEARTH_TOKEN;' in agent
    assert agent.count('"&auth="') == 1 and "Authorization" not in agent
    for field in ("device_id", "mac", "type", "msg", "success", "tests"):
        assert f'"{field}":' in agent


# --------------------------------------------------------------------------------------
# Examples/python
# --------------------------------------------------------------------------------------


def test_python_example_listens_and_writes(hearth_launcher, tmp_path):
    """`listen_and_write.py` against `hearth serve --emulator`: exit status 0, the listener's
    events for the set, the pushes and the updates, the query's five newest readings, and
    the data it leaves under /python-example."""
    data_dir, log_dir = tmp_path / "data", tmp_path / "logs"
    data_dir.mkdir()
    log_dir.mkdir()
    server = hearth_launcher(data_dir, log_dir, emulator=True, log_name="python-example")
    url = server.database_url("examples")
    result = run_example([str(LISTEN_AND_WRITE), "--url", url, "--seconds", "1"], cwd=tmp_path)
    assert result.returncode == 0, describe(result)
    assert result.stderr == "", describe(result)

    lines = result.stdout.splitlines()
    events = [line.split(None, 3)[1:] for line in lines if line.strip().startswith("event:")]
    assert ["put", "/", "None"] in events  # the initial value, before any write
    assert ["put", "/line", "{'name': 'Line 1', 'shift': 1, 'state': 'running'}"] in events
    pushes = [event for event in events if event[0] == "put" and event[1].startswith("/readings/")]
    assert len(pushes) == 7
    assert ["patch", "/line", "{'state': 'paused', 'operator': 'ada'}"] in events
    assert any(event[:2] == ["patch", "/"] and "'line/shift': 2" in event[2] for event in events)
    query = lines[lines.index("query  readings ordered by timestamp, last 5:") + 1:][:5]
    assert [line.split()[0] for line in query] == [event[1].split("/")[2] for event in pushes][-5:]

    with requests.Session() as session:
        session.trust_env = False
        data = session.get(f"{server.base_url}/python-example.json",
                           params={"ns": "examples"}, headers={"Authorization": "Bearer owner"},
                           timeout=30).json()
    assert data["line"] == {"name": "Line 1", "operator": "ada", "shift": 2, "state": "paused"}
    readings = data["readings"]
    assert len(readings) == 7
    assert all(isinstance(reading["timestamp"], int) for reading in readings.values())
    assert readings[min(readings)]["checked"] is True
    assert isinstance(data["listener_closed_at"], int)


def test_python_example_explains_a_server_without_emulator_mode(factory_server, tmp_path):
    """Against a production-mode server the SDK's `owner` token is refused: exit status 1
    and a hint about `--emulator`."""
    server, _ = factory_server
    result = run_example([str(LISTEN_AND_WRITE), "--url", server.database_url("default")],
                         cwd=tmp_path)
    assert result.returncode == 1, describe(result)
    assert "--emulator" in result.stderr


class TLSRelay:
    """A TLS-terminating TCP relay on 127.0.0.1, standing in for the proxy in front of a
    production Hearth: it decrypts each connection and pipes the bytes to `target_port`."""

    def __init__(self, directory: Path, target_port: int) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
        now = datetime.datetime.now(datetime.timezone.utc)
        certificate = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
        self.certificate_path = directory / "relay-cert.pem"
        key_path = directory / "relay-key.pem"
        self.certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(self.certificate_path, key_path)
        self.target_port = target_port
        self.listener = socket.create_server((HOST, 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        try:
            secure = self.context.wrap_socket(client, server_side=True)
            upstream = socket.create_connection((HOST, self.target_port))
        except OSError:
            client.close()
            return
        with self.lock:
            self.sockets += [secure, upstream]
        threading.Thread(target=self._pump, args=(secure, upstream), daemon=True).start()
        self._pump(upstream, secure)

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self.listener.close()
        with self.lock:
            for open_socket in self.sockets:
                open_socket.close()


@pytest.fixture
def tls_relay(tmp_path):
    """``tls_relay(port)`` starts a TLSRelay to `port`; all are closed when the test ends."""
    relays: list[TLSRelay] = []

    def start(port: int) -> TLSRelay:
        relays.append(TLSRelay(tmp_path, port))
        return relays[-1]

    try:
        yield start
    finally:
        for relay in relays:
            relay.close()


def test_python_example_uses_the_admin_token_over_https(factory_server, tls_relay, tmp_path):
    """`listen_and_write.py --url https://localhost:<relay>` with HEARTH_TOKEN: the SDK's
    production mode (no `--emulator`, rules in force) sends the admin token as its access
    token, for REST calls and for the listener alike; a wrong token exits 1 with a hint."""
    server, token = factory_server
    relay = tls_relay(server.port)
    url = f"https://localhost:{relay.port}"
    tls = {"REQUESTS_CA_BUNDLE": str(relay.certificate_path)}

    result = run_example([str(LISTEN_AND_WRITE), "--url", url, "--seconds", "0.5"],
                         cwd=tmp_path, HEARTH_TOKEN=token, **tls)
    assert result.returncode == 0, describe(result)
    assert "closed the listener after" in result.stdout
    data = rest(server, "/python-example", token).json()  # `localhost`: the default namespace
    assert data["line"] == {"name": "Line 1", "operator": "ada", "shift": 2, "state": "paused"}
    assert len(data["readings"]) == 7

    wrong = run_example([str(LISTEN_AND_WRITE), "--url", url, "--token", "0" * 64],
                        cwd=tmp_path, **tls)
    assert wrong.returncode == 1, describe(wrong)
    assert "admin token" in wrong.stderr
    missing = run_example([str(LISTEN_AND_WRITE), "--url", url], cwd=tmp_path, **tls)
    assert missing.returncode == 2 and "needs the admin token" in missing.stderr, describe(missing)
