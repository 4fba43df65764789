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

from compat_helpers import HOST, local_session, read_until_closed

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


def exchange(port: int, raw: bytes, read_seconds: float = 5) -> bytes:
    """Sends `raw` on a new connection and returns everything read until the server closes."""
    with socket.create_connection((HOST, port)) as connection:
        connection.sendall(raw)
        connection.settimeout(read_seconds)
        return read_until_closed(connection)


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
    # /.metrics needs the admin credential: `owner` on these emulator-mode servers.
    text = local_session().get(f"{base_url}/.metrics", headers={"Authorization": "Bearer owner"}, timeout=10).text
    for line in text.splitlines():
        if line.startswith(f'hearth_limit_refusals_total{{reason="{reason}"}}'):
            return float(line.split()[-1])
    return 0.0


def test_oversized_request_head_is_answered_431_and_the_server_carries_on(limited):
    client = local_session()
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
    client = local_session()
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
    client = local_session()
    timeouts_before = metric(limited.base_url, "timeout")
    stalled = socket.create_connection((HOST, limited.port))
    # A valid JSON prefix ("12345" of a 20-byte number): only the stall can stop the write.
    stalled.sendall(b"PUT /half.json HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n12345")
    stalled.settimeout(TIMEOUT_SECONDS + 3)
    started = time.monotonic()
    read_until_closed(stalled)
    elapsed = time.monotonic() - started
    stalled.close()
    assert TIMEOUT_SECONDS * 0.8 <= elapsed <= TIMEOUT_SECONDS + 2
    assert client.get(f"{limited.base_url}/half.json", timeout=5).json() is None
    assert metric(limited.base_url, "timeout") == timeouts_before + 1


def test_idle_keep_alive_connection_is_closed_after_the_timeout(limited):
    connection = socket.create_connection((HOST, limited.port))
    connection.sendall(b"GET /.json HTTP/1.1\r\nHost: x\r\n\r\n")
    connection.settimeout(TIMEOUT_SECONDS + 3)
    received = connection.recv(65536)
    assert received.startswith(b"HTTP/1.1 200")
    started = time.monotonic()
    read_until_closed(connection)
    assert TIMEOUT_SECONDS * 0.8 <= time.monotonic() - started <= TIMEOUT_SECONDS + 2
    connection.close()


def read_response(connection: socket.socket, received: bytes = b"") -> tuple[bytes, bytes]:
    """One HTTP/1.1 response with a Content-Length from `connection`; returns it and what
    followed it."""
    while b"\r\n\r\n" not in received:
        chunk = connection.recv(65536)
        assert chunk, f"closed before a response: {received!r}"
        received += chunk
    head, _, rest = received.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    while len(rest) < length:
        chunk = connection.recv(65536)
        assert chunk
        rest += chunk
    return head + b"\r\n\r\n" + rest[:length], rest[length:]


def test_pipelined_requests_are_all_answered_and_a_pipelined_stream_is_not_timed(limited):
    connection = socket.create_connection((HOST, limited.port))
    connection.settimeout(10)
    connection.sendall(b"GET /.json HTTP/1.1\r\nHost: x\r\n\r\n"
                       b"GET /p.json HTTP/1.1\r\nHost: x\r\n\r\n"
                       b"GET /p.json HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
    first, rest = read_response(connection)
    second, rest = read_response(connection, rest)
    assert first.startswith(b"HTTP/1.1 200") and second.startswith(b"HTTP/1.1 200")
    # The stream answered last outlives the request timeout and still gets events.
    time.sleep(TIMEOUT_SECONDS + 1)
    assert local_session().put(f"{limited.base_url}/p.json", json="later", timeout=5).status_code == 200
    received = rest
    deadline = time.monotonic() + 5
    while b'"data":"later"' not in received and time.monotonic() < deadline:
        chunk = connection.recv(65536)
        assert chunk, f"the stream was closed: {received!r}"
        received += chunk
    assert b'"data":"later"' in received
    connection.close()


def test_reads_pipelined_behind_writes_are_answered_after_them_and_see_them(limited):
    """Reads are answered on the event loop, writes in a task: a read sent behind a write on
    the same connection must still be answered after it, and see it. The first read, with
    nothing before it, is answered on the event loop; the write behind it waits for it."""
    assert local_session().put(f"{limited.base_url}/order.json", json="zero", timeout=5).status_code == 200
    connection = socket.create_connection((HOST, limited.port))
    connection.settimeout(10)
    requests_ = b"GET /order.json HTTP/1.1\r\nHost: x\r\n\r\n"
    for value in (b'"first"', b'"second"', b'"third"'):
        requests_ += (b"PUT /order.json HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: " + str(len(value)).encode() + b"\r\n\r\n" + value)
        requests_ += b"GET /order.json HTTP/1.1\r\nHost: x\r\n\r\n"
    connection.sendall(requests_)
    rest = b""
    bodies = []
    for _ in range(7):
        response, rest = read_response(connection, rest)
        assert response.startswith(b"HTTP/1.1 200"), response
        bodies.append(response.partition(b"\r\n\r\n")[2])
    assert bodies == [b'"zero"'] + [b'"first"'] * 2 + [b'"second"'] * 2 + [b'"third"'] * 2
    connection.close()


def test_connections_beyond_the_limit_get_503_and_slots_come_back(hearth_launcher, tmp_path):
    # A longer request timeout than the other tests', so the held connections stay put however
    # slow the machine is.
    server = hearth_launcher(tmp_path / "data", tmp_path, emulator=True, log_name="connections", extra_args=[
        "--max-connections", str(MAX_CONNECTIONS), "--request-timeout-seconds", "30"])
    refused_before = metric(server.base_url, "connections")
    held = []
    deadline = time.monotonic() + 10
    while len(held) < MAX_CONNECTIONS:
        connection = socket.create_connection((HOST, server.port))
        connection.settimeout(10)
        connection.sendall(b"GET /.json HTTP/1.1\r\nHost: x\r\n\r\n")
        if read_response(connection)[0].startswith(b"HTTP/1.1 200"):
            held.append(connection)
            continue
        # A slot still held by a connection that is closing (the start-up probe's): retry.
        connection.close()
        assert time.monotonic() < deadline, "slots never came back"
        time.sleep(0.2)
    try:
        status, body = status_and_body(exchange(server.port, b"GET /.json HTTP/1.1\r\nHost: x\r\n\r\n"))
        assert status == 503
        assert f"limit of {MAX_CONNECTIONS} connections" in body["error"]
        # A refused connection that says nothing is closed soon, not after the request timeout.
        silent = socket.create_connection((HOST, server.port))
        silent.settimeout(10)
        started = time.monotonic()
        try:
            assert silent.recv(1024) == b""
        except ConnectionResetError:
            pass
        assert time.monotonic() - started < 5
        silent.close()
        # The held connections are still served.
        held[0].sendall(b"GET /.json HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(held[0])[0].startswith(b"HTTP/1.1 200")
    finally:
        for connection in held:
            connection.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if local_session().get(f"{server.base_url}/.json", timeout=5).status_code == 200:
                break
        except requests.RequestException:
            pass
        time.sleep(0.1)
    assert local_session().get(f"{server.base_url}/.json", timeout=5).status_code == 200
    # The 503 and the silent one, at least (retries while the probe's slot came back count too).
    assert metric(server.base_url, "connections") >= refused_before + 2


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
        assert local_session().get(f"{limited.base_url}/.json", timeout=5).status_code == 200
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
    client = local_session()
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
    client = local_session()
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
    client = local_session()
    assert client.put(f"{limited.base_url}/bad.json", json="before", timeout=10).status_code == 200
    response = client.put(f"{limited.base_url}/bad.json", data=data, headers=headers, timeout=10)
    assert response.status_code == status
    assert isinstance(response.json()["error"], str)
    assert client.get(f"{limited.base_url}/bad.json", timeout=10).json() == "before"


def test_every_response_names_its_request_id(limited):
    client = local_session()
    first = client.get(f"{limited.base_url}/.json", timeout=5).headers.get("X-Request-Id")
    second = client.get(f"{limited.base_url}/.json", timeout=5).headers.get("X-Request-Id")
    assert first and second and first != second
