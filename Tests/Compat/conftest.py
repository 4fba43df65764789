"""Pytest fixtures that run a live `hearth serve --emulator` for the compatibility suite.

The suite drives the server with the official `firebase-admin` SDK in emulator mode, so
the SDK sends `Authorization: Bearer owner` and never asks Google for credentials. Only
loopback addresses are ever contacted.

Fixtures, from the outside in:

* ``hearth_server`` (session): starts the binary on a free 127.0.0.1 port with a fresh
  data directory and stops it at the end of the session.
* ``firebase_app`` (session): one `firebase_admin.App` pointed at the server.
* ``namespace`` / ``root`` (per test): a fresh database namespace and a
  `db.Reference` to its root, so tests never see each other's data.
* ``raw`` (per test): a `RawClient` that talks REST to the test's namespace directly,
  for checks that must not go through the SDK.
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import ssl
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import firebase_admin
import pytest
import requests
from firebase_admin import db

from compat_helpers import (
    EMULATOR_HOST_ENV_VAR,
    HOST,
    HTTP_TIMEOUT_SECONDS,
    EmulatorOnlyCredential,
    free_port,
)

STARTUP_TIMEOUT_SECONDS = 30.0
SHUTDOWN_GRACE_SECONDS = 5.0
START_ATTEMPTS = 3
_REPO_ROOT = Path(__file__).resolve().parents[2]


def pytest_addoption(parser: pytest.Parser) -> None:
    """Adds ``--hearth-binary``, the server executable under test."""
    parser.addoption(
        "--hearth-binary",
        default=".build/debug/hearth",
        help="Path to the hearth executable (default: .build/debug/hearth, "
        "relative to the current directory or the repository root).",
    )


@dataclass(frozen=True)
class HearthServer:
    """A running `hearth serve` process and where to reach it."""

    process: subprocess.Popen
    port: int
    data_dir: Path
    stderr_path: Path

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>`, without a trailing slash."""
        return f"http://{HOST}:{self.port}"

    def database_url(self, namespace: str) -> str:
        """The emulator-style database URL firebase-admin accepts for `namespace`."""
        return f"{self.base_url}/?ns={namespace}"

    def wait_for_log(self, text: str, seconds: float = 10) -> bool:
        """Waits until the server's stderr contains `text`; False if it did not in time."""
        deadline = time.monotonic() + seconds
        while text not in self.stderr_tail(1_000_000):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def stderr_tail(self, limit: int = 4000) -> str:
        """The last `limit` characters the server wrote to stderr."""
        try:
            text = self.stderr_path.read_text(errors="replace")
        except OSError as error:
            return f"<could not read server stderr: {error}>"
        return text[-limit:]


class RawClient:
    """Plain REST access to one namespace, bypassing firebase-admin.

    The session ignores proxy environment variables, so it can only reach the loopback
    server it was built for.
    """

    def __init__(self, base_url: str, namespace: str) -> None:
        self.base_url = base_url
        self.namespace = namespace
        self.session = requests.Session()
        self.session.trust_env = False
        self.session.headers["Authorization"] = "Bearer owner"

    def url(self, path: str) -> str:
        """The `.json` URL of `path` (slash-separated, no leading slash needed)."""
        return f"{self.base_url}/{path.strip('/')}.json"

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        """Sends `method` to `path` in this namespace and returns the response."""
        params = dict(kwargs.pop("params", None) or {})
        params.setdefault("ns", self.namespace)
        kwargs.setdefault("timeout", HTTP_TIMEOUT_SECONDS)
        return self.session.request(method, self.url(path), params=params, **kwargs)

    def get_json(self, path: str):
        """The value at `path`, asserting the server answered 200."""
        response = self.request("GET", path)
        assert response.status_code == 200, (response.status_code, response.text)
        return response.json()

    def close(self) -> None:
        """Releases the pooled connections."""
        self.session.close()


def _resolve_binary(config: pytest.Config) -> Path:
    """Finds the `--hearth-binary` file, relative to the invocation dir or the repo root."""
    option = Path(config.getoption("--hearth-binary"))
    candidates = [option] if option.is_absolute() else [
        Path(config.invocation_params.dir) / option,
        _REPO_ROOT / option,
    ]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate.resolve()
    tried = ", ".join(str(candidate) for candidate in candidates)
    pytest.exit(f"hearth binary not found or not executable (tried: {tried})", returncode=4)


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if the process is still alive after a grace period."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=SHUTDOWN_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=SHUTDOWN_GRACE_SECONDS)


def _wait_until_healthy(server: HearthServer, scheme: str = "http", ca_file: str | None = None) -> str | None:
    """Polls `/.health` until it answers 200 (over HTTPS, trusting `ca_file`, for TLS servers).

    Returns None on success, or a description of why the server never became healthy. Each
    probe's connection is closed before the next step (http.client, closed explicitly): a
    kept-alive probe connection would count against a server's `--max-connections`.
    """
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    last_error = "no answer yet"
    while time.monotonic() < deadline:
        code = server.process.poll()
        if code is not None:
            return f"hearth exited with status {code} during startup"
        if scheme == "https":
            context = ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()
            connection = http.client.HTTPSConnection(HOST, server.port, timeout=1, context=context)
        else:
            connection = http.client.HTTPConnection(HOST, server.port, timeout=1)
        try:
            connection.request("GET", "/.health")
            response = connection.getresponse()
            body = response.read()
            if response.status == 200:
                return None
            last_error = f"/.health answered {response.status}: {body[:200]!r}"
        except (OSError, http.client.HTTPException) as error:
            last_error = f"{type(error).__name__}: {error}"
        finally:
            connection.close()
        time.sleep(0.1)
    return f"/.health not 200 within {STARTUP_TIMEOUT_SECONDS:.0f}s ({last_error})"


def _start_server(
    binary: Path,
    data_dir: Path,
    log_dir: Path,
    *,
    emulator: bool = True,
    extra_args: Sequence[str] = (),
    log_name: str = "hearth-stderr",
    probe_scheme: str = "http",
    ca_file: str | None = None,
) -> HearthServer:
    """Starts `hearth serve` on a free port and waits until it is healthy.

    `--emulator` is passed unless `emulator` is False; `extra_args` are appended to the
    command line. The server's stderr (and stdout) go to `<log_dir>/<log_name>-<attempt>.log`.
    Retries on a new port a few times, in case another process grabbed the port between
    probing and binding.
    """
    failures = []
    for attempt in range(1, START_ATTEMPTS + 1):
        port = free_port()
        stderr_path = log_dir / f"{log_name}-{attempt}.log"
        command = [
            str(binary), "serve", *(["--emulator"] if emulator else []),
            "--host", HOST, "--port", str(port), "--data-dir", str(data_dir),
            *extra_args,
        ]
        with open(stderr_path, "wb") as stderr:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr,
            )
        server = HearthServer(process, port, data_dir, stderr_path)
        problem = _wait_until_healthy(server, probe_scheme, ca_file)
        if problem is None:
            return server
        _stop(process)
        failures.append(f"attempt {attempt} ({' '.join(command)}): {problem}\n"
                        f"--- stderr ---\n{server.stderr_tail()}")
    pytest.fail("could not start hearth:\n" + "\n".join(failures), pytrace=False)


@pytest.fixture(scope="session")
def hearth_server(pytestconfig, tmp_path_factory) -> Iterator[HearthServer]:
    """A live `hearth serve --emulator` on 127.0.0.1 with an empty data directory."""
    binary = _resolve_binary(pytestconfig)
    data_dir = tmp_path_factory.mktemp("hearth-data")
    log_dir = tmp_path_factory.mktemp("hearth-logs")
    with pytest.MonkeyPatch.context() as env:
        # Keep every HTTP client (including the SDK's) off any configured proxy.
        for name in ("NO_PROXY", "no_proxy"):
            existing = os.environ.get(name)
            env.setenv(name, f"{existing},{HOST},localhost" if existing else f"{HOST},localhost")
        # The http databaseURL used below selects emulator mode by itself; make sure a
        # stray variable cannot point a test at some other emulator.
        env.delenv(EMULATOR_HOST_ENV_VAR, raising=False)
        server = _start_server(binary, data_dir, log_dir)
        try:
            yield server
        finally:
            crashed = server.process.poll()
            _stop(server.process)
        if crashed is not None:
            pytest.fail(f"hearth exited with status {crashed} while the suite was running\n"
                        f"--- stderr ---\n{server.stderr_tail()}", pytrace=False)


@pytest.fixture(scope="session")
def hearth_binary(pytestconfig) -> Path:
    """The `hearth` executable under test (`--hearth-binary`), for tests of its subcommands."""
    return _resolve_binary(pytestconfig)


@pytest.fixture
def hearth_launcher(pytestconfig) -> Iterator[Callable[..., HearthServer]]:
    """A function that starts extra `hearth serve` processes for one test.

    Call it as ``launch(data_dir, log_dir, emulator=..., extra_args=..., log_name=...)``
    (the keywords of `_start_server`); it returns a healthy `HearthServer`. Every process
    it started is stopped (SIGTERM, then SIGKILL) when the test ends, whatever happened.
    """
    binary = _resolve_binary(pytestconfig)
    started: list[subprocess.Popen] = []

    def launch(data_dir: Path, log_dir: Path, **options) -> HearthServer:
        server = _start_server(binary, data_dir, log_dir, **options)
        started.append(server.process)
        return server

    try:
        yield launch
    finally:
        for process in started:
            _stop(process)


@pytest.fixture(scope="session")
def postgres():
    """A private PostgreSQL cluster for the whole run (see `postgres_cluster.py`)."""
    from postgres_cluster import PostgresCluster

    cluster = PostgresCluster()
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
def firebase_app(hearth_server: HearthServer) -> Iterator[firebase_admin.App]:
    """A firebase-admin app in emulator mode, deleted at the end of the session."""
    app = firebase_admin.initialize_app(
        credential=EmulatorOnlyCredential(),
        options={
            "databaseURL": hearth_server.database_url("compat-default"),
            "projectId": "hearth-compat",
            "httpTimeout": HTTP_TIMEOUT_SECONDS,
        },
        name=f"hearth-compat-{uuid.uuid4().hex[:8]}",
    )
    try:
        yield app
    finally:
        firebase_admin.delete_app(app)


def make_namespace(label: str) -> str:
    """A fresh namespace name (`[a-z0-9_-]`, at most 63 chars) that mentions `label`."""
    slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:40] or "test"
    return f"c-{slug}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def namespace(request: pytest.FixtureRequest) -> str:
    """A namespace no other test uses."""
    return make_namespace(request.node.name)


@pytest.fixture
def root(firebase_app, hearth_server: HearthServer, namespace: str) -> db.Reference:
    """The SDK reference to the root of this test's namespace."""
    return db.reference("/", app=firebase_app, url=hearth_server.database_url(namespace))


@pytest.fixture
def raw(hearth_server: HearthServer, namespace: str) -> Iterator[RawClient]:
    """Direct REST access to this test's namespace."""
    client = RawClient(hearth_server.base_url, namespace)
    try:
        yield client
    finally:
        client.close()
