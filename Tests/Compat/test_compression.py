"""gzip responses: JSON, CSV and event streams are compressed when the client accepts gzip."""

from __future__ import annotations

import gzip
import http.client
import json
import threading
import time

from compat_helpers import HOST


def raw_get(port: int, path: str, headers: dict[str, str]) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    connection.request("GET", path, headers={"Authorization": "Bearer owner", **headers})
    return connection.getresponse()


def test_large_json_is_gzipped_and_small_is_not(hearth_server, raw):
    """A response over 1 KB is gzipped (Vary: Accept-Encoding), a small one is not, and the
    bytes decompress to exactly what an uncompressed request gets."""
    big = {f"k{index}": {"value": index, "text": "x" * 20} for index in range(200)}
    raw.request("PUT", "big", json=big)
    raw.request("PUT", "small", json={"a": 1})
    ns = raw.namespace
    plain = raw_get(hearth_server.port, f"/big.json?ns={ns}", {}).read()
    response = raw_get(hearth_server.port, f"/big.json?ns={ns}", {"Accept-Encoding": "gzip, deflate"})
    assert response.getheader("Content-Encoding") == "gzip"
    assert "Accept-Encoding" in (response.getheader("Vary") or "")
    body = response.read()
    assert len(body) < len(plain) / 3
    assert gzip.decompress(body) == plain
    assert json.loads(plain) == big
    small = raw_get(hearth_server.port, f"/small.json?ns={ns}", {"Accept-Encoding": "gzip"})
    assert small.getheader("Content-Encoding") is None
    assert small.read() == b'{"a":1}'


def test_gzip_refused_with_q0_or_not_asked(hearth_server, raw):
    """No gzip without Accept-Encoding, or with gzip;q=0."""
    raw.request("PUT", "big", json={f"k{index}": "y" * 30 for index in range(100)})
    ns = raw.namespace
    for headers in ({}, {"Accept-Encoding": "gzip;q=0"}, {"Accept-Encoding": "identity"}):
        response = raw_get(hearth_server.port, f"/big.json?ns={ns}", headers)
        assert response.getheader("Content-Encoding") is None, headers
        assert json.loads(response.read())["k1"] == "y" * 30


def test_deflate_when_gzip_is_not_accepted(hearth_server, raw):
    """`deflate` (the zlib format, as HTTP means it) for clients that accept it and not gzip."""
    raw.request("PUT", "big", json={f"k{index}": "z" * 30 for index in range(100)})
    ns = raw.namespace
    plain = raw_get(hearth_server.port, f"/big.json?ns={ns}", {}).read()
    for header in ("deflate", "gzip;q=0, deflate"):
        response = raw_get(hearth_server.port, f"/big.json?ns={ns}", {"Accept-Encoding": header})
        assert response.getheader("Content-Encoding") == "deflate", header
        assert __import__("zlib").decompress(response.read()) == plain


def test_csv_is_gzipped(hearth_server, raw):
    """CSV exports are compressed too."""
    raw.request("PUT", "rows", json={f"r{index}": {"a": index, "b": "z" * 10} for index in range(300)})
    response = raw_get(hearth_server.port, f"/rows.csv?ns={raw.namespace}", {"Accept-Encoding": "gzip"})
    assert response.getheader("Content-Encoding") == "gzip"
    lines = gzip.decompress(response.read()).decode().split("\r\n")
    assert lines[0] == "key,a,b" and len(lines) == 302


def test_event_stream_through_gzip_arrives_live(hearth_server, raw):
    """Each server-sent event is flushed through gzip as it happens."""
    ns = raw.namespace
    response = raw_get(hearth_server.port, f"/live.json?ns={ns}",
                       {"Accept": "text/event-stream", "Accept-Encoding": "gzip"})
    assert response.getheader("Content-Encoding") == "gzip"
    decompressor = __import__("zlib").decompressobj(16 + 15)
    received = bytearray()
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            chunk = response.read1(4096) if hasattr(response, "read1") else response.read(1)
            if not chunk:
                return
            received.extend(decompressor.decompress(chunk))
            if received.count(b"event: put") >= 2:
                done.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + 10
    while b"event: put" not in received and time.monotonic() < deadline:
        time.sleep(0.05)
    assert b'data: {"path":"/","data":null}' in received
    raw.request("PUT", "live/n", json=7)
    assert done.wait(10), bytes(received)
    assert b'data: {"path":"/n","data":7}' in received
    response.close()


def test_stream_compression_can_be_switched_off(hearth_launcher, tmp_path):
    server = hearth_launcher(tmp_path / "data", tmp_path, emulator=True, log_name="nogzip",
                             extra_args=["--no-compress-streams"])
    stream = raw_get(server.port, "/.json", {"Accept": "text/event-stream", "Accept-Encoding": "gzip"})
    assert stream.status == 200
    assert stream.getheader("Content-Encoding") is None
    assert b"event: put" in stream.read1(4096)
    stream.close()
    # Other responses are still compressed.
    connection = http.client.HTTPConnection(HOST, server.port, timeout=30)
    connection.request("PUT", "/big.json", body=json.dumps("x" * 5000), headers={"Authorization": "Bearer owner"})
    assert connection.getresponse().read()
    json_response = raw_get(server.port, "/big.json", {"Accept-Encoding": "gzip"})
    assert json_response.getheader("Content-Encoding") == "gzip"
    assert json.loads(gzip.decompress(json_response.read())) == "x" * 5000
