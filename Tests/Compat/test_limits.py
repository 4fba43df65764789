"""Limits and abuse: each limit answers with a clear status (or, for a stalling client, a
closed connection) and never hurts the other clients or the data.

One server per test module, started with small limits so the tests are quick:
2-second request timeout, 4 KiB request heads, 6 connections, 3 streams per client,
10,000-byte bodies.
"""

from __future__ import annotations

import gzip
import json
import socket
import time
import zlib

import pytest
import requests

from compat_helpers import HOST

TIMEOUT_SECONDS = 2
MAX_HEADER_BYTES = 4096
MAX_CONNECTIONS = 6
MAX_STREAMS = 3
MAX_BODY_BYTES = 10_000


@pytest.fixture
def limited(hearth_launcher, tmp_path):
    return hearth_launcher(tmp_path / "data", tmp_path, emulator=True, log_name="limits", extra_args=[
        "--request-timeout-seconds", str(TIMEOUT_SECONDS),
        "--max-header-bytes", str(MAX_HEADER_BYTES),
        "--max-connections", str(MAX_CONNECTIONS),
        "--max-streams-per-client", str(MAX_STREAMS),
        "--max-body-bytes", str(MAX_BODY_BYTES),
    ])


def session() -> requests.Session:
    client = requests.Session()
    client.trust_env = False
    return client


def exchange(port: int, raw: bytes, read_seconds: float = 5) -> bytes:
    """Sends `raw` on a new connection and returns everything read until the server closes."""
    with socket.create_connection((HOST, port)) as connection:
        connection.sendall(raw)
        connection.settimeout(read_seconds)
        received = b""
        try:
            while chunk := connection.recv(65536):
                received += chunk
        except (socket.timeout, ConnectionResetError):
            pass
        return received


def status_and_body(raw: bytes) -> tuple[int, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body) if body.startswith(b"{") else {}


def open_stream(port: int) -> socket.socket:
    connection = socket.create_connection((HOST, port))
    connection.sendall(b"GET /.json HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
    connection.settimeout(5)
    return connection


def metric(base_url: str, reason: str) -> float:
    text = session().get(f"{base_url}/.metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(f'hearth_limit_refusals_total{{reason="{reason}"}}'):
            return float(line.split()[-1])
    return 0.0


def test_oversized_request_head_is_answered_431_and_the_server_carries_on(limited):
    client = session()
    assert client.put(f"{limited.base_url}/kept.json", json=1, timeout=10).status_code == 200
    raw = exchange(limited.port, b"PUT /kept.json HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nX-Padding: "
                   + b"a" * (MAX_HEADER_BYTES * 2) + b"\r\n\r\n2")
    status, body = status_and_body(raw)
    assert status == 431
    assert "too large" in body["error"]
    # Nothing changed, and a normal request on a new connection is served.
    assert client.get(f"{limited.base_url}/kept.json", timeout=10).json() == 1
    assert metric(limited.base_url, "header_size") == 1


def test_slow_loris_client_is_disconnected_while_others_are_served(limited):
    client = session()
    stalled = socket.create_connection((HOST, limited.port))
    stalled.sendall(b"GET /.json HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()
    closed_after = None
    stalled.settimeout(0.5)
    while time.monotonic() - started < TIMEOUT_SECONDS * 5:
        try:
            # One header line at a time, never the end of the head.
            stalled.sendall(b"X-Slow: 1\r\n")
            if stalled.recv(1024) == b"":
                closed_after = time.monotonic() - started
                break
        except socket.timeout:
            pass
        except (BrokenPipeError, ConnectionResetError):
            closed_after = time.monotonic() - started
            break
        # Meanwhile everybody else is served promptly.
        assert client.get(f"{limited.base_url}/.json", timeout=5).status_code == 200
    stalled.close()
    assert closed_after is not None, "the slow client was never disconnected"
    assert TIMEOUT_SECONDS * 0.8 <= closed_after <= TIMEOUT_SECONDS + 2
    assert metric(limited.base_url, "timeout") >= 1


def test_body_that_stops_arriving_is_cut_off_and_nothing_is_written(limited):
    client = session()
    stalled = socket.create_connection((HOST, limited.port))
    stalled.sendall(b"PUT /half.json HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n{\"a\":")
    stalled.settimeout(TIMEOUT_SECONDS + 3)
    started = time.monotonic()
    try:
        while stalled.recv(1024):
            pass
    except (socket.timeout, ConnectionResetError):
        pass
    elapsed = time.monotonic() - started
    stalled.close()
    assert elapsed <= TIMEOUT_SECONDS + 2
    assert client.get(f"{limited.base_url}/half.json", timeout=5).json() is None


def test_idle_keep_alive_connection_is_closed_after_the_timeout(limited):
    connection = socket.create_connection((HOST, limited.port))
    connection.sendall(b"GET /.json HTTP/1.1\r\nHost: x\r\n\r\n")
    connection.settimeout(TIMEOUT_SECONDS + 3)
    received = connection.recv(65536)
    assert received.startswith(b"HTTP/1.1 200")
    started = time.monotonic()
    try:
        while connection.recv(1024):
            pass
    except (socket.timeout, ConnectionResetError):
        pass
    assert time.monotonic() - started <= TIMEOUT_SECONDS + 2
    connection.close()


def test_connections_beyond_the_limit_get_503_and_slots_come_back(limited):
    held = [socket.create_connection((HOST, limited.port)) for _ in range(MAX_CONNECTIONS)]
    try:
        time.sleep(0.3)
        raw = exchange(limited.port, b"GET /.json HTTP/1.1\r\nHost: x\r\n\r\n")
        status, body = status_and_body(raw)
        assert status == 503
        assert f"limit of {MAX_CONNECTIONS} connections" in body["error"]
        # The held connections are still served.
        held[0].sendall(b"GET /.json HTTP/1.1\r\nHost: x\r\n\r\n")
        held[0].settimeout(5)
        assert held[0].recv(1024).startswith(b"HTTP/1.1 200")
    finally:
        for connection in held:
            connection.close()
    time.sleep(0.3)
    assert session().get(f"{limited.base_url}/.json", timeout=5).status_code == 200
    assert metric(limited.base_url, "connections") == 1


def test_streams_beyond_the_per_client_limit_get_429_and_closing_one_frees_a_slot(limited):
    streams = [open_stream(limited.port) for _ in range(MAX_STREAMS)]
    try:
        for stream in streams:
            assert stream.recv(1024).startswith(b"HTTP/1.1 200")
        status, body = status_and_body(
            exchange(limited.port, b"GET /.json HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
                                   b"Connection: close\r\n\r\n"))
        assert status == 429
        assert "Too many streams" in body["error"]
        # Plain reads are not streams and are not limited.
        assert session().get(f"{limited.base_url}/.json", timeout=5).status_code == 200
    finally:
        streams[0].close()
    deadline = time.monotonic() + 5
    while True:
        replacement = open_stream(limited.port)
        first = replacement.recv(1024)
        replacement.close()
        if first.startswith(b"HTTP/1.1 200") or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert first.startswith(b"HTTP/1.1 200")
    for stream in streams[1:]:
        stream.close()


@pytest.mark.parametrize("encoding,compress", [
    ("gzip", gzip.compress),
    ("deflate", zlib.compress),
])
def test_compressed_request_bodies_are_accepted(limited, encoding, compress):
    client = session()
    value = {"device": "imp-1", "result": "pass", "readings": list(range(50))}
    body = compress(json.dumps(value).encode())
    put = client.put(f"{limited.base_url}/gz.json", data=body, headers={"Content-Encoding": encoding}, timeout=10)
    assert put.status_code == 200, put.text
    assert put.json() == value
    posted = client.post(f"{limited.base_url}/gzlog.json", data=body, headers={"Content-Encoding": encoding},
                         timeout=10)
    assert posted.status_code == 200
    assert client.get(f"{limited.base_url}/gzlog/{posted.json()['name']}.json", timeout=10).json() == value


def test_compression_bomb_is_refused_413_and_nothing_changes(limited):
    client = session()
    assert client.put(f"{limited.base_url}/target.json", json="before", timeout=10).status_code == 200
    # 1 MB of JSON that compresses to about 1 KB: over the 10,000-byte limit once inflated.
    bomb = gzip.compress(json.dumps("x" * 1_000_000).encode())
    assert len(bomb) < MAX_BODY_BYTES
    response = client.put(f"{limited.base_url}/target.json", data=bomb, headers={"Content-Encoding": "gzip"},
                          timeout=10)
    assert response.status_code == 413
    assert "once decompressed" in response.json()["error"]
    assert client.get(f"{limited.base_url}/target.json", timeout=10).json() == "before"
    assert metric(limited.base_url, "body_size") == 1


@pytest.mark.parametrize("headers,data,status", [
    ({"Content-Encoding": "gzip"}, b"\x1f\x8b\x08\x00not gzip at all", 400),
    ({"Content-Encoding": "gzip"}, gzip.compress(b'{"a":1}')[:-6], 400),
    ({"Content-Encoding": "gzip"}, gzip.compress(b'{"a":1}') + b"junk", 400),
    ({"Content-Encoding": "br"}, b"\x0b\x02\x80{}\x03", 415),
])
def test_bad_compressed_bodies_get_clear_errors_and_change_nothing(limited, headers, data, status):
    client = session()
    assert client.put(f"{limited.base_url}/bad.json", json="before", timeout=10).status_code == 200
    response = client.put(f"{limited.base_url}/bad.json", data=data, headers=headers, timeout=10)
    assert response.status_code == status
    assert isinstance(response.json()["error"], str)
    assert client.get(f"{limited.base_url}/bad.json", timeout=10).json() == "before"


def test_every_response_names_its_request_id(limited):
    client = session()
    first = client.get(f"{limited.base_url}/.json", timeout=5).headers.get("X-Request-Id")
    second = client.get(f"{limited.base_url}/.json", timeout=5).headers.get("X-Request-Id")
    assert first and second and first != second
