#!/usr/bin/env python3
"""A bounded soak run of `hearth serve` on loopback.

For `--seconds` (600 in `make soak`, 60 in `make test`): writers PUT, PATCH, POST and DELETE
device readings and test results, readers GET values and run indexed queries, and `--streams`
SSE streams (400 by default) listen to the devices while being closed and reopened all the
time (connection churn); the writers reconnect every few hundred requests too. The data set
stays bounded (results are cleared every few seconds), so memory must level off.

Prints throughput, errors and the server's RSS over time, then stops the server with SIGTERM
(it must exit 0) and checks the data directory with `hearth verify`. Exits 1 if anything
unexpected happened: any error, a stream that never started, RSS at the end above
1.5 x (RSS after warm-up) + 64 MB, a non-zero exit, or a failed verify.

Only the standard library is used; the HTTP/1.1 client below is deliberately minimal.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"
RULES = {"rules": {".read": True, ".write": True, "devices": {".indexOn": ["temp"]}}}


@dataclass
class Tally:
    """What happened, by kind."""
    ok: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    error_samples: list[str] = field(default_factory=list)
    stream_events: int = 0
    streams_opened: int = 0
    streams_resynced: int = 0

    def success(self, kind: str) -> None:
        self.ok[kind] = self.ok.get(kind, 0) + 1

    def failure(self, kind: str, detail: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1
        if len(self.error_samples) < 10:
            self.error_samples.append(f"{kind}: {detail}")


class Connection:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: object | None = None) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
        payload = b"" if body is None else json.dumps(body).encode()
        head = (f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\nAuthorization: Bearer owner\r\n"
                f"Content-Length: {len(payload)}\r\n\r\n").encode()
        self.writer.write(head + payload)
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("connection closed before the response")
        status = int(status_line.split()[1])
        headers = {}
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            data = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            data = b""
            while (size := int((await self.reader.readline()).strip(), 16)) > 0:
                data += await self.reader.readexactly(size)
                await self.reader.readline()
            await self.reader.readline()
        else:
            data = b""
        if headers.get("connection") == "close":
            await self.close()
        return status, data

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
        self.reader = self.writer = None


async def paced(rate: float, deadline: float, step) -> None:
    """Calls `step()` about `rate` times a second until `deadline`."""
    interval = 1.0 / rate
    next_time = time.monotonic()
    while time.monotonic() < deadline:
        await step()
        next_time += interval
        delay = next_time - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            next_time = time.monotonic()


async def checked(tally: Tally, kind: str, connection: Connection, method: str, path: str, body=None,
                  expect=(200, 204)) -> bytes | None:
    try:
        status, data = await connection.request(method, path, body)
    except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError) as error:
        tally.failure(kind, f"{method} {path}: {error!r}")
        await connection.close()
        return None
    if status not in expect:
        tally.failure(kind, f"{method} {path}: {status} {data[:200]!r}")
        return None
    tally.success(kind)
    return data


async def writer_task(port: int, index: int, rate: float, deadline: float, tally: Tally) -> None:
    connection = Connection(port)
    count = 0

    async def step() -> None:
        nonlocal count
        count += 1
        device = f"d{random.randrange(500)}"
        roll = random.random()
        if roll < 0.45:
            await checked(tally, "put", connection, "PUT", f"/devices/{device}.json",
                          {"temp": random.randrange(-20, 120), "writer": index, "at": {".sv": "timestamp"}})
        elif roll < 0.7:
            await checked(tally, "patch", connection, "PATCH", f"/devices/{device}.json",
                          {"temp": random.randrange(-20, 120), "seen": {".sv": {"increment": 1}}})
        elif roll < 0.97:
            await checked(tally, "post", connection, "POST", "/results.json",
                          {"device": device, "result": random.choice(["pass", "fail"]), "at": {".sv": "timestamp"}})
        else:
            await checked(tally, "delete", connection, "DELETE", f"/devices/{device}.json")
        if count % 300 == 0:
            await connection.close()  # churn: a new connection now and then

    await paced(rate, deadline, step)
    await connection.close()


async def reader_task(port: int, rate: float, deadline: float, tally: Tally) -> None:
    connection = Connection(port)
    count = 0

    async def step() -> None:
        nonlocal count
        count += 1
        roll = random.random()
        if roll < 0.5:
            await checked(tally, "get", connection, "GET", f"/devices/d{random.randrange(500)}.json")
        elif roll < 0.8:
            data = await checked(tally, "query", connection, "GET",
                                 '/devices.json?orderBy=%22temp%22&limitToLast=10')
            if data is not None and len(json.loads(data) or {}) > 10:
                tally.failure("query", "limitToLast=10 answered more than 10 children")
        else:
            await checked(tally, "shallow", connection, "GET", "/results.json?shallow=true")
        if count % 200 == 0:
            await connection.close()

    await paced(rate, deadline, step)
    await connection.close()


async def cleaner_task(port: int, deadline: float, tally: Tally) -> None:
    """Keeps the data bounded: clears the results every few seconds."""
    connection = Connection(port)
    while time.monotonic() < deadline:
        await asyncio.sleep(5)
        await checked(tally, "clear", connection, "DELETE", "/results.json")
    await connection.close()


async def stream_task(port: int, deadline: float, tally: Tally, churn: bool) -> None:
    """Keeps one stream open, reopening it after a random lifetime (churn)."""
    while time.monotonic() < deadline:
        lifetime = random.uniform(5, 30) if churn else deadline - time.monotonic()
        until = min(deadline, time.monotonic() + lifetime)
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
        except OSError as error:
            tally.failure("stream", f"connect: {error!r}")
            await asyncio.sleep(1)
            continue
        writer.write(f"GET /devices.json HTTP/1.1\r\nHost: {HOST}\r\nAccept: text/event-stream\r\n"
                     f"Authorization: Bearer owner\r\n\r\n".encode())
        started = False
        opened_at = time.monotonic()
        try:
            status_line = await asyncio.wait_for(reader.readline(), 10)
            if not status_line.startswith(b"HTTP/1.1 200"):
                tally.failure("stream", f"status {status_line!r}")
            else:
                tally.streams_opened += 1
                while time.monotonic() < until:
                    remaining = until - time.monotonic()
                    try:
                        line = await asyncio.wait_for(reader.readline(), max(0.01, remaining))
                    except asyncio.TimeoutError:
                        break
                    if not line:
                        if time.monotonic() < until - 1:
                            tally.failure("stream", "closed by the server")
                        break
                    if line.startswith(b"event: put") or line.startswith(b"event: patch"):
                        tally.stream_events += 1
                        started = True
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as error:
            tally.failure("stream", f"{error!r}")
        finally:
            # How long the stream waited within its planned life (closing it, or a busy client
            # coming back late from the last read, is not waiting for the server).
            waited_until = min(time.monotonic(), until)
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass
        if not started and waited_until - opened_at > 5:
            tally.failure("stream", "no initial put within 5 s")


def rss_megabytes(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def wait_healthy(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"hearth exited at start with {process.returncode}")
        try:
            with socket.create_connection((HOST, port), timeout=1) as probe:
                probe.sendall(b"GET /.health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if probe.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("hearth did not become healthy")


async def run(port: int, pid: int, seconds: float, streams: int, tally: Tally) -> list[tuple[float, float]]:
    setup = Connection(port)
    status, body = await setup.request("PUT", "/.settings/rules.json", RULES)
    assert status == 200, body
    await setup.close()
    start = time.monotonic()
    deadline = start + seconds
    tasks = [asyncio.create_task(stream_task(port, deadline, tally, churn=index % 4 != 0)) for index in range(streams)]
    tasks += [asyncio.create_task(writer_task(port, index, 40, deadline, tally)) for index in range(5)]
    tasks += [asyncio.create_task(reader_task(port, 50, deadline, tally)) for _ in range(4)]
    tasks.append(asyncio.create_task(cleaner_task(port, deadline, tally)))
    samples = []
    while time.monotonic() < deadline:
        await asyncio.sleep(min(5, max(0.1, deadline - time.monotonic())))
        samples.append((time.monotonic() - start, rss_megabytes(pid)))
        done = sum(tally.ok.values())
        print(f"  t={samples[-1][0]:6.1f}s  rss={samples[-1][1]:7.1f} MB  requests={done}  "
              f"stream events={tally.stream_events}  errors={sum(tally.errors.values())}", flush=True)
    await asyncio.gather(*tasks)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--streams", type=int, default=400)
    parser.add_argument("--hearth-binary", default=".build/debug/hearth")
    arguments = parser.parse_args()

    binary = str(Path(arguments.hearth_binary).resolve())
    data = Path(tempfile.mkdtemp(prefix="hearth-soak-"))
    port = free_port()
    log_path = data.parent / (data.name + ".log")
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [binary, "serve", "--emulator", "--host", HOST, "--port", str(port), "--data-dir", str(data / "db"),
             "--max-streams-per-client", str(arguments.streams * 2), "--segment-bytes", str(1 << 20),
             "--snapshot-after-records", "2000"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    problems: list[str] = []
    try:
        wait_healthy(port, server)
        print(f"soak: {arguments.seconds:.0f} s, {arguments.streams} streams, server pid {server.pid}, "
              f"log {log_path}", flush=True)
        tally = Tally()
        began = time.monotonic()
        samples = asyncio.run(run(port, server.pid, arguments.seconds, arguments.streams, tally))
        elapsed = time.monotonic() - began
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            code = "killed after 30 s"
    if code != 0:
        problems.append(f"the server exited with {code} after SIGTERM")

    total = sum(tally.ok.values())
    print(f"requests: {total} in {elapsed:.0f} s ({total / elapsed:.0f}/s): "
          + ", ".join(f"{kind} {count}" for kind, count in sorted(tally.ok.items())))
    print(f"streams: {tally.streams_opened} opened (with churn), {tally.stream_events} put/patch events received")
    print(f"errors: {sum(tally.errors.values())} " + (str(tally.errors) if tally.errors else ""))
    for sample in tally.error_samples:
        print(f"  {sample}")
    if tally.errors:
        problems.append("unexpected errors")
    if tally.streams_opened < arguments.streams:
        problems.append("not every stream opened")
    warm = samples[max(0, len(samples) // 10)][1] if samples else 0
    end = samples[-1][1] if samples else 0
    peak = max((rss for _, rss in samples), default=0)
    print(f"RSS: {warm:.1f} MB after warm-up, {end:.1f} MB at the end, {peak:.1f} MB peak")
    if end > warm * 1.5 + 64:
        problems.append(f"RSS grew from {warm:.1f} MB to {end:.1f} MB")

    verify = subprocess.run([binary, "verify", "--data-dir", str(data / "db")], capture_output=True, text=True)
    print(f"hearth verify: exit {verify.returncode}")
    print("  " + (verify.stdout.strip() or verify.stderr.strip()).replace("\n", "\n  "))
    if verify.returncode != 0:
        problems.append("hearth verify failed")

    if problems:
        print("SOAK FAILED: " + "; ".join(problems))
        print(f"server log: {log_path}")
        return 1
    print("soak passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
