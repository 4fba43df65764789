"""Constants, a credential stub and assertion helpers shared by the compatibility tests."""

from __future__ import annotations

import re
import socket
import time

import requests
from firebase_admin import credentials

HOST = "127.0.0.1"  # the only address the suite ever contacts
HTTP_TIMEOUT_SECONDS = 30
EMULATOR_HOST_ENV_VAR = "FIREBASE_DATABASE_EMULATOR_HOST"

# Firebase push ids: 20 characters of "-0-9A-Z_a-z". That alphabet is in ASCII order, so
# ids compare chronologically as plain strings.
PUSH_ID_PATTERN = re.compile(r"[-0-9A-Za-z_]{20}")


def assert_json_identical(actual, expected, where: str = "$") -> None:
    """Asserts `actual == expected` with the same JSON types everywhere.

    Plain `==` is too lenient for a wire-compatibility check: `True == 1`, `1 == 1.0`
    and a dict never equals a list only by luck. This walks both values and reports the
    first path whose type or value differs.
    """
    assert _json_kind(actual) == _json_kind(expected), (
        f"{where}: expected {_json_kind(expected)} {expected!r}, "
        f"got {_json_kind(actual)} {actual!r}"
    )
    if isinstance(expected, dict):
        assert sorted(actual) == sorted(expected), (
            f"{where}: keys differ: expected {sorted(expected)}, got {sorted(actual)}"
        )
        for key, value in expected.items():
            assert_json_identical(actual[key], value, f"{where}.{key}")
    elif isinstance(expected, list):
        assert len(actual) == len(expected), (
            f"{where}: expected {len(expected)} items {expected!r}, got {len(actual)} {actual!r}"
        )
        for index, value in enumerate(expected):
            assert_json_identical(actual[index], value, f"{where}[{index}]")
    else:
        assert actual == expected, f"{where}: expected {expected!r}, got {actual!r}"


def _json_kind(value) -> str:
    """The JSON type name of a decoded value; bool is not a number here."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "dict"
    return type(value).__name__


def assert_push_id(key) -> None:
    """Asserts `key` looks like a Firebase push id."""
    assert isinstance(key, str), f"push id is not a string: {key!r}"
    assert PUSH_ID_PATTERN.fullmatch(key), f"not a 20-char push id: {key!r}"


class EmulatorOnlyCredential(credentials.Base):
    """A credential that refuses to be used.

    In emulator mode firebase-admin substitutes its own `EmulatorAdminCredentials`
    ("Bearer owner"); if the SDK ever asked this object for a Google credential, it would
    be about to talk to production, so fail loudly instead.
    """

    def get_credential(self):
        raise RuntimeError(
            "firebase-admin tried to fetch real Google credentials; "
            "the compat suite must only run in emulator mode"
        )


def local_session() -> requests.Session:
    """A requests session that ignores proxy settings, for the loopback server."""
    session = requests.Session()
    session.trust_env = False
    return session


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def read_until_closed(connection: socket.socket) -> bytes:
    """Everything `connection` receives until the peer closes it (or resets it, or the
    socket's timeout passes)."""
    received = b""
    try:
        while chunk := connection.recv(65536):
            received += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    return received


def wait_for(condition, seconds: float = 10) -> bool:
    """Polls `condition()` every 50 ms until it is truthy or `seconds` have passed; its last
    answer."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()

