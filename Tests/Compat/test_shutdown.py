"""Shutdown: SIGTERM stops accepting, finishes what is in flight, ends the streams, flushes the
log and exits 0 within a bounded time; everything acknowledged is there after a restart.
Also the structured (JSON) log: request ids, and no token ever written.
"""

from __future__ import annotations

import json
import signal
import socket
import threading
import time

import requests

from compat_helpers import HOST, local_session, read_until_closed

SHUTDOWN_TIMEOUT_SECONDS = 2


def test_sigterm_finishes_writes_ends_streams_and_exits_0_in_bounded_time(hearth_launcher, tmp_path):
    data = tmp_path / "data"
    server = hearth_launcher(data, tmp_path, emulator=True, log_name="shutdown", extra_args=[
        "--shutdown-timeout-seconds", str(SHUTDOWN_TIMEOUT_SECONDS), "--fsync", "interval:200"])
    streams = []
    for _ in range(20):
        stream = socket.create_connection((HOST, server.port))
        stream.sendall(b"GET /.json HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        stream.settimeout(10)
        assert stream.recv(4096).startswith(b"HTTP/1.1 200")
        streams.append(stream)
    # A client in the middle of an upload that will never finish it.
    stalled = socket.create_connection((HOST, server.port))
    stalled.sendall(b"PUT /stalled.json HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"a\"")

    acknowledged: list[str] = []
    stop = threading.Event()

    def writer(index: int) -> None:
        client = local_session()
        while not stop.is_set():
            try:
                response = client.post(f"{server.base_url}/log.json", json={"writer": index}, timeout=10)
            except requests.RequestException:
                return
            if response.status_code == 200:
                acknowledged.append(response.json()["name"])

    writers = [threading.Thread(target=writer, args=(index,)) for index in range(4)]
    for thread in writers:
        thread.start()
    time.sleep(1.0)
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    code = server.process.wait(timeout=SHUTDOWN_TIMEOUT_SECONDS + 10)
    elapsed = time.monotonic() - started
    stop.set()
    for thread in writers:
        thread.join()
    assert code == 0, server.stderr_tail()
    assert elapsed < SHUTDOWN_TIMEOUT_SECONDS + 7, elapsed
    assert len(acknowledged) > 0
    # Every stream was ended by the server (the chunked body's last chunk), not cut.
    for stream in streams:
        received = read_until_closed(stream)
        assert received.endswith(b"0\r\n\r\n"), received[-200:]
        stream.close()
    stalled.close()
    assert "Hearth stopped" in server.stderr_tail()

    # Everything acknowledged (under fsync=interval, flushed at shutdown) is there after a restart.
    restarted = hearth_launcher(data, tmp_path, emulator=True, log_name="shutdown-restart")
    stored = local_session().get(f"{restarted.base_url}/log.json", timeout=30).json() or {}
    missing = [name for name in acknowledged if name not in stored]
    assert not missing, f"{len(missing)} of {len(acknowledged)} acknowledged writes lost"
    assert local_session().get(f"{restarted.base_url}/stalled.json", timeout=10).json() is None


def test_json_logs_carry_request_ids_and_never_tokens(hearth_launcher, tmp_path):
    token = "never-log-this-token-0123456789abcdef"
    server = hearth_launcher(tmp_path / "data", tmp_path, emulator=True, log_name="jsonlog", extra_args=[
        "--log-format", "json", "--log-level", "debug", "--admin-token", token])
    client = local_session()
    response = client.put(f"{server.base_url}/secret.json", params={"auth": token}, json={"a": 1}, timeout=10)
    assert response.status_code == 200
    request_id = response.headers["X-Request-Id"]
    denied = client.get(f"{server.base_url}/x.json", params={"auth": "forged.jwt.value"},
                        headers={"Authorization": f"Bearer {token}-wrong"}, timeout=10)
    assert denied.status_code == 401
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=15) == 0
    text = server.stderr_path.read_text()
    records = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert all({"time", "level", "label", "message"} <= set(record) for record in records)
    logged = [record for record in records if record.get("hb.request.id") == request_id]
    assert any(record["message"] == "request" and record.get("path") == "/secret.json"
               and record.get("status") == "200" for record in logged), logged
    assert token not in text
    assert "forged.jwt.value" not in text


def test_sighup_without_tls_does_not_stop_the_server(hearth_launcher, tmp_path):
    server = hearth_launcher(tmp_path / "data", tmp_path, emulator=True, log_name="hup")
    server.process.send_signal(signal.SIGHUP)
    assert server.wait_for_log("nothing to reload")
    assert server.process.poll() is None
    assert local_session().get(f"{server.base_url}/.health", timeout=10).status_code == 200
