#!/usr/bin/env python3
"""Hearth benchmarks: the program behind `make bench`.

Runs the selected benchmark sections, prints a table per section and a final summary
with target / ratio / pass-or-miss columns, and writes machine-readable results to
Benchmarks/results/latest.json.

    .venv/bin/python Benchmarks/run.py --release-dir .build/release [--quick] [--only json,http]

Sections: json (parse/serialise), http (wrk), durable (fsync'ed POSTs vs Redis with
appendfsync always), realtime (durable SDK sets over WebSocket vs REST POST), recovery (cold open of a 1M-record log), snapshot (snapshot write).

Benchmarks never fail on time: the exit status is 0 even when a target is missed. It is
non-zero only when something broke (a binary, wrk or Redis is missing, a server crashed, a
request answered non-2xx, writes went missing, ...).

Adding a benchmark: write a function `bench_<name>(ctx: Context) -> dict` decorated with
`@section("<name>", "description")`. It returns the raw figures to store in the JSON
file, and calls `ctx.row(...)` for each summary line and `ctx.fail(...)` for anything
broken. Sections run in the order they are defined.

Only 127.0.0.1 is ever contacted: the servers (hearth, redis-server) bind to loopback and
every client here (http.client, wrk, redis-benchmark) is pointed at them directly, never
through a proxy.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import http.client
import os
import platform
import random
import re
import shutil
import signal
import threading
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Collection, Sequence, TypeVar

try:
    import orjson
except ImportError:  # pragma: no cover - environment problem, reported plainly
    sys.exit("orjson is missing: run `make python-deps` and use .venv/bin/python")

HOST = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO_ROOT / "Benchmarks" / "results" / "latest.json"

JSON_DOCUMENT_BYTES = 10_000_000
WRK_THREADS = 2
WRK_CONNECTIONS = 32
SERVER_START_TIMEOUT = 20.0
SERVER_STOP_GRACE = 10.0
SERVER_START_ATTEMPTS = 3

# Firebase Realtime Database documents a limit of about 1,000 write operations per second
# per database (https://firebase.google.com/docs/database/usage/limits).
FIREBASE_WRITES_PER_SECOND = 1_000
# Redis SET value size: the ~200 bytes of SMALL_RECORD (whose JSON is 232 bytes).
REDIS_VALUE_BYTES = 200
RECOVERY_RECORDS = 1_000_000
RECOVERY_RECORDS_QUICK = 200_000
RECOVERY_TARGET_SECONDS = 1.5  # issue 18 (was 5 s)

# A ~200-byte webhook-like record, shaped like the records HearthBench generates.
# ASCII only, so it can be embedded verbatim in a Lua long string.
SMALL_RECORD: dict[str, Any] = {
    "device_id": "dev-42-1352477790",
    "mac": "d5915011351f",
    "type": "testresult",
    "msg": "All tests passed",
    "timestamp": 1700000000042,
    "success": True,
    "temperature": 35.83,
    "firmware": {"version": "3.1.1", "build": 42},
    "tags": ["line-4", "station-2"],
}


class BenchmarkError(Exception):
    """Something broke (as opposed to a benchmark merely missing its target)."""


# --------------------------------------------------------------------------------------
# Results model
# --------------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the final summary.

    `target` is a minimum for `ratio`; rows without a target are informational unless
    `ok` says whether a correctness check held.
    """

    section: str
    name: str
    result: str
    ratio: float | None = None
    target: float | None = None
    ok: bool | None = None

    @property
    def status(self) -> str:
        if self.ok is False:
            return "FAIL"
        if self.target is not None and self.ratio is not None:
            return "PASS" if self.ratio >= self.target else "MISS"
        if self.ok is True:
            return "OK"
        return "info"


@dataclass
class Context:
    """What every section gets: settings, a scratch directory and the result sinks."""

    release_dir: Path
    quick: bool
    json_seconds: float
    http_seconds: int
    workdir: Path
    rows: list[Row] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    current_section: str = ""

    def binary(self, name: str) -> Path:
        """Path of a release binary, or BenchmarkError if it is not there."""
        path = self.release_dir / name
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise BenchmarkError(f"{path} not found or not executable (build it with `make bench`)")
        return path

    def row(self, name: str, result: str, **kwargs: Any) -> Row:
        """Adds a summary row for the current section."""
        row = Row(self.current_section, name, result, **kwargs)
        self.rows.append(row)
        return row

    def fail(self, message: str) -> None:
        """Records something broken; printed loudly and makes the exit status non-zero."""
        self.failures.append(f"[{self.current_section}] {message}")
        print(f"\n!!! FAILURE [{self.current_section}]: {message}\n", flush=True)


Section = Callable[[Context], dict[str, Any]]
SECTIONS: dict[str, tuple[str, Section]] = {}


def section(name: str, description: str) -> Callable[[Section], Section]:
    """Registers a benchmark section under `name` (selectable with --only)."""

    def register(function: Section) -> Section:
        SECTIONS[name] = (description, function)
        return function

    return register


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------


def heading(text: str) -> None:
    """Prints a section heading."""
    print(f"\n=== {text} ===", flush=True)


def print_table(headers: list[str], rows: list[list[str]], right: Collection[int] = ()) -> None:
    """Prints a plain-text table; columns whose index is in `right` are right-aligned."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]

    def line(cells: list[str]) -> str:
        parts = [
            str(cell).rjust(width) if index in right else str(cell).ljust(width)
            for index, (cell, width) in enumerate(zip(cells, widths))
        ]
        return "  ".join(parts).rstrip()

    print(line(headers))
    print("  ".join("-" * width for width in widths))
    for cells in rows:
        print(line(cells))
    sys.stdout.flush()


def best_time(body: Callable[[], Any], seconds: float, min_runs: int = 3) -> tuple[float, int]:
    """Best per-call time of `body`, HearthBench's method: one warm-up call, then repeat
    for at least `seconds` (and at least `min_runs` times) and keep the minimum.

    The garbage collector is paused while timing, as `timeit` does, so a cyclic
    collection of unrelated garbage is not charged to one call. Returns (seconds, runs).
    """
    body()
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        best = float("inf")
        runs = 0
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline or runs < min_runs:
            start = time.perf_counter()
            body()
            best = min(best, time.perf_counter() - start)
            runs += 1
        return best, runs
    finally:
        if gc_was_enabled:
            gc.enable()


def ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, 0 when the denominator is 0."""
    return numerator / denominator if denominator else 0.0


def run_command(command: list[str], timeout: float) -> str:
    """Runs a command, returns its stdout; BenchmarkError if it fails or times out."""
    try:
        completed = subprocess.run(
            command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
        )
    except subprocess.TimeoutExpired as error:
        raise BenchmarkError(f"`{' '.join(command)}` timed out after {timeout:.0f}s") from error
    if completed.returncode != 0:
        raise BenchmarkError(
            f"`{' '.join(command)}` exited with {completed.returncode}: "
            f"{(completed.stderr or completed.stdout).strip()[-2000:]}"
        )
    return completed.stdout


# --------------------------------------------------------------------------------------
# Machine information
# --------------------------------------------------------------------------------------


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_total_mb() -> int | None:
    """Total memory in MB from /proc/meminfo."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError):
        pass
    return None


def load_average() -> list[float]:
    """The 1/5/15-minute load averages."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return []


def git_revision() -> str | None:
    """HEAD's short hash, with "+dirty" when the work tree has changes."""
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+dirty" if head and dirty else head or None


def wrk_version() -> str | None:
    """The first line of `wrk --version`, if wrk is installed."""
    path = shutil.which("wrk")
    if not path:
        return None
    completed = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
    return (completed.stdout or completed.stderr).splitlines()[0].strip()


def redis_version() -> str | None:
    """`redis-server --version` (e.g. "Redis server v=7.0.15 ..."), if Redis is installed."""
    path = shutil.which("redis-server")
    if not path:
        return None
    completed = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
    lines = (completed.stdout or completed.stderr).splitlines()
    return lines[0].strip() if lines else None


def machine_info() -> dict[str, Any]:
    """Facts about the machine that explain the figures."""
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "memory_mb": memory_total_mb(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "orjson": orjson.__version__,
        "wrk": wrk_version(),
        "redis": redis_version(),
        "git": git_revision(),
        "load_average_start": load_average(),
    }


# --------------------------------------------------------------------------------------
# Section: JSON parse / serialise throughput
# --------------------------------------------------------------------------------------


def measure_orjson(data: bytes, seconds: float) -> dict[str, Any]:
    """orjson parse (loads) and serialise (dumps) throughput on `data`, in MB/s (10^6)."""
    megabytes = len(data) / 1_000_000
    document = orjson.loads(data)
    parse, parse_runs = best_time(lambda: orjson.loads(data), seconds)
    serialize, serialize_runs = best_time(lambda: orjson.dumps(document), seconds)
    return {
        "orjson_parse_mb_s": megabytes / parse,
        "orjson_serialize_mb_s": megabytes / serialize,
        "orjson_serialized_bytes": len(orjson.dumps(document)),
        "orjson_parse_runs": parse_runs,
        "orjson_serialize_runs": serialize_runs,
    }


def last_json_line(output: str, what: str) -> dict[str, Any]:
    """The last line of `output` that is a JSON object (HearthBench's result line)."""
    lines = [line for line in output.splitlines() if line.strip().startswith("{")]
    if not lines:
        raise BenchmarkError(f"{what} printed no JSON line: {output[-500:]!r}")
    return orjson.loads(lines[-1])


def run_hearth_bench_json(bench: Path, document: Path, seconds: float) -> dict[str, Any]:
    """Runs `HearthBench json` and returns the JSON object it prints."""
    output = run_command([str(bench), "json", str(document), f"{seconds:g}"], timeout=900)
    return last_json_line(output, "HearthBench json")


def webhook_document(ctx: Context, bench: Path) -> Path:
    """The ~10 MB webhook document in the scratch directory, generated on first use (the
    json section makes it; later sections reuse it)."""
    document = ctx.workdir / "webhooks.json"
    if not document.is_file():
        print(f"generating {JSON_DOCUMENT_BYTES:,}-byte document ...", flush=True)
        run_command([str(bench), "generate", str(document), str(JSON_DOCUMENT_BYTES)], timeout=300)
    return document


def print_json_table(figures: dict[str, Any]) -> None:
    """The throughput table of the JSON section."""
    rows = [
        [name, f"{figures[f'{key}_parse_mb_s']:.1f}", f"{figures[f'{key}_serialize_mb_s']:.1f}"]
        for name, key in (("Hearth", "hearth"), ("orjson", "orjson"), ("Foundation", "foundation"))
    ]
    print_table(["Implementation", "Parse MB/s", "Serialise MB/s"], rows, right={1, 2})


@section("json", "JSON parse/serialise throughput: Hearth vs orjson vs Foundation")
def bench_json(ctx: Context) -> dict[str, Any]:
    """Parse and serialise the same ~10 MB webhook document with Hearth, Foundation
    (both via HearthBench) and orjson (here), and compare."""
    bench = ctx.binary("HearthBench")
    document = webhook_document(ctx, bench)
    data = document.read_bytes()

    print(f"HearthBench json ({ctx.json_seconds:g}s per measurement) ...", flush=True)
    figures = run_hearth_bench_json(bench, document, ctx.json_seconds)
    if figures.get("bytes") != len(data):
        ctx.fail(f"HearthBench measured {figures.get('bytes')} bytes, the file has {len(data)}")
    print(f"orjson {orjson.__version__} ({ctx.json_seconds:g}s per measurement) ...", flush=True)
    figures.update(measure_orjson(data, ctx.json_seconds))
    figures["document_bytes"] = len(data)
    print_json_table(figures)

    for operation, label in (("parse", "parse"), ("serialize", "serialise")):
        hearth = figures[f"hearth_{operation}_mb_s"]
        orj = figures[f"orjson_{operation}_mb_s"]
        foundation = figures[f"foundation_{operation}_mb_s"]
        ctx.row(f"JSON {label} Hearth/orjson", f"{hearth:.1f} vs {orj:.1f} MB/s",
                ratio=ratio(hearth, orj), target=1.0)
        ctx.row(f"JSON {label} Hearth/Foundation", f"{hearth:.1f} vs {foundation:.1f} MB/s",
                ratio=ratio(hearth, foundation))
    return figures


# --------------------------------------------------------------------------------------
# Server processes (hearth serve, redis-server)
# --------------------------------------------------------------------------------------


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


ServerT = TypeVar("ServerT", bound="ServerProcess")


class ServerProcess:
    """A server process on loopback with a scratch data directory and a log file: started
    on a free port, polled until ready, stopped (SIGTERM, then SIGKILL).

    A subclass supplies only what differs: `name` and `not_ready` for messages,
    `command(port)` and `probe(port)`.

    Use as a context manager: the process is stopped on exit, whatever happened inside.
    """

    name = "server"  # in messages: "<name> did not start", "<name> exited ..."
    not_ready = "not ready"  # on timeout: "<not_ready> within <n>s (<last probe answer>)"

    # Start in a session of its own (so that stopping it never signals the runner).
    new_session = True

    def __init__(self, data_dir: Path, log_path: Path) -> None:
        self.data_dir = data_dir
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    def __enter__(self: ServerT) -> ServerT:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def command(self, port: int) -> list[str]:
        """The command line that runs the server on 127.0.0.1:`port`."""
        raise NotImplementedError

    def probe(self, port: int) -> str | None:
        """One readiness check of the server on `port`: None if ready, else a short reason
        (an OSError, e.g. connection refused, also counts as not ready)."""
        raise NotImplementedError

    def start(self) -> None:
        """Starts the server on a free port and waits until `probe` says it is ready.

        Retries on another port a few times in case the probed port was taken meanwhile.
        """
        problems = []
        for _ in range(SERVER_START_ATTEMPTS):
            self.port = free_port()
            self.data_dir.mkdir(parents=True, exist_ok=True)
            command = self.command(self.port)
            with open(self.log_path, "ab") as log:
                self.process = subprocess.Popen(
                    command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=self.new_session,
                )
            problem = self.wait_until_ready()
            if problem is None:
                return
            self.stop()
            problems.append(f"port {self.port}: {problem}")
        raise BenchmarkError(f"{self.name} did not start: " + "; ".join(problems) +
                             f"\n--- log ---\n{self.log_tail()}")

    def wait_until_ready(self) -> str | None:
        """Polls `probe`; None once it reports ready, else why it never did."""
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        last = "no answer"
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                return f"exited with status {self.process.returncode} during startup"
            try:
                problem = self.probe(self.port)
                if problem is None:
                    return None
                last = problem
            except OSError as error:
                last = f"{type(error).__name__}: {error}"
            time.sleep(0.1)
        return f"{self.not_ready} within {SERVER_START_TIMEOUT:.0f}s ({last})"

    def ensure_alive(self, when: str) -> None:
        """BenchmarkError if the server process has exited."""
        if self.process is None or self.process.poll() is not None:
            code = None if self.process is None else self.process.returncode
            raise BenchmarkError(f"{self.name} exited (status {code}) {when}\n"
                                 f"--- log ---\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        """The end of the server log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period; only the process we started."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=SERVER_STOP_GRACE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=SERVER_STOP_GRACE)


# --------------------------------------------------------------------------------------
# Hearth server process
# --------------------------------------------------------------------------------------


def http_request(port: int, method: str, path: str, body: bytes | None = None,
                 timeout: float = 120.0, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """One HTTP request to 127.0.0.1:`port` (never through a proxy); (status, body)."""
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        all_headers = {"Content-Type": "application/json"} if body is not None else {}
        all_headers.update(headers or {})
        connection.request(method, path, body=body, headers=all_headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


class HearthServer(ServerProcess):
    """`hearth serve` on loopback with a scratch data directory, ready once GET /.health
    answers 200.

    Use as a context manager: the process is stopped (SIGTERM, then SIGKILL) on exit,
    whatever happened inside.
    """

    name = "hearth"
    not_ready = "/.health not 200"
    # A session of its own, by default. With the kernel's autogroup scheduling that makes the
    # server one group against the load generator's group, each getting half the CPU whatever
    # its threads need; the fan-out section turns it off (see Docs/PERFORMANCE.md).
    new_session = True

    # Webhook-style rules that also let the benchmark read without a token: every request
    # pays for a rules check, as in production.
    RULES = '{"rules": {".read": true, ".write": "auth == null"}}'

    def __init__(self, binary: Path, workdir: Path, extra_args: Sequence[str] = (),
                 rules: str | None = None) -> None:
        super().__init__(workdir / "hearth-data", workdir / "hearth.log")
        self.binary = binary
        self.extra_args = list(extra_args)
        workdir.mkdir(parents=True, exist_ok=True)
        self.rules_file = workdir / "bench.rules.json"
        self.rules_file.write_text(rules or self.RULES)

    def command(self, port: int) -> list[str]:
        """`hearth serve` on 127.0.0.1:`port` with the scratch data directory."""
        return [str(self.binary), "serve", "--host", HOST, "--port", str(port),
                "--data-dir", str(self.data_dir), "--rules", str(self.rules_file), *self.extra_args]

    def probe(self, port: int) -> str | None:
        """GET /.health: None on 200, else the status it answered."""
        status, _ = http_request(port, "GET", "/.health", timeout=1)
        return None if status == 200 else f"/.health answered {status}"

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        """An HTTP request to this server."""
        return http_request(self.port, method, path, body, headers=headers)

    def memory_kb(self) -> dict[str, int]:
        """Current and peak resident memory of the server (VmRSS, VmHWM), in kB."""
        if self.process is None:
            return {}
        figures = {}
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    figures[key] = int(value.split()[0])
        except (OSError, ValueError):
            pass
        return figures


# --------------------------------------------------------------------------------------
# wrk
# --------------------------------------------------------------------------------------

TIME_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def parse_duration_ms(text: str) -> float:
    """wrk's latency text ("512.00us", "1.23ms", "2.00s") in milliseconds."""
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    if not match:
        raise BenchmarkError(f"unparseable wrk latency {text!r}")
    return float(match.group(1)) * TIME_UNITS[match.group(2)]


def parse_wrk_output(output: str) -> dict[str, Any]:
    """Requests/s, totals, latency percentiles and error counts from `wrk --latency`."""

    def find(pattern: str) -> re.Match[str] | None:
        return re.search(pattern, output, re.MULTILINE)

    rate = find(r"^Requests/sec:\s+([\d.]+)")
    total = find(r"^\s*(\d+) requests in ([\d.]+\w+), ([\d.]+\w+) read")
    if not rate or not total:
        raise BenchmarkError(f"could not parse wrk output:\n{output}")
    percentiles = {
        f"p{match.group(1)}_ms": parse_duration_ms(match.group(2))
        for match in re.finditer(r"^\s+(50|75|90|99)%\s+(\S+)", output, re.MULTILINE)
    }
    sockets = find(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
    socket_errors = dict(zip(("connect", "read", "write", "timeout"),
                             (int(value) for value in sockets.groups()) if sockets else (0,) * 4))
    bad_status = find(r"Non-2xx or 3xx responses: (\d+)")
    return {
        "requests_per_s": float(rate.group(1)),
        "requests": int(total.group(1)),
        "duration": total.group(2),
        "read": total.group(3),
        **percentiles,
        "socket_errors": socket_errors,
        "non_2xx": int(bad_status.group(1)) if bad_status else 0,
    }


def write_post_script(path: Path, body: bytes) -> Path:
    """A wrk Lua script that POSTs `body` as JSON."""
    text = body.decode("ascii")
    if "]==]" in text:
        raise BenchmarkError("POST body cannot be embedded in a Lua long string")
    path.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = [==[{text}]==]\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    return path


def run_wrk(port: int, path: str, seconds: int, script: Path | None = None,
            threads: int = WRK_THREADS, connections: int = WRK_CONNECTIONS) -> dict[str, Any]:
    """Runs wrk (-t2 -c32 --latency unless told) against http://127.0.0.1:`port``path`."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise BenchmarkError("wrk not found: run `make deps` (or apt-get install -y wrk)")
    command = [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if script is not None:
        command += ["-s", str(script)]
    command.append(f"http://{HOST}:{port}{path}")
    output = run_command(command, timeout=seconds + 60)
    result = parse_wrk_output(output)
    result["command"] = " ".join(command)
    result["output"] = output
    return result


# --------------------------------------------------------------------------------------
# Section: HTTP throughput
# --------------------------------------------------------------------------------------


def seed_and_check(server: HearthServer, record: bytes) -> None:
    """PUTs the small record at /bench/item.json, reads it back, and checks that a POST
    elsewhere works, so the wrk runs start from known-good endpoints."""
    status, body = server.request("PUT", "/bench/item.json", record)
    if status != 200:
        raise BenchmarkError(f"seeding PUT /bench/item.json answered {status}: {body[:200]!r}")
    status, body = server.request("GET", "/bench/item.json")
    if status != 200 or orjson.loads(body) != orjson.loads(record):
        raise BenchmarkError(f"GET /bench/item.json answered {status}: {body[:200]!r}")
    status, body = server.request("POST", "/preflight.json", record)
    if status != 200 or "name" not in orjson.loads(body):
        raise BenchmarkError(f"preflight POST answered {status}: {body[:200]!r}")


def count_children(server: HearthServer, path: str) -> int:
    """Number of children at `path` (a shallow GET)."""
    status, body = server.request("GET", f"{path}.json?shallow=true")
    if status != 200:
        raise BenchmarkError(f"GET {path}.json?shallow=true answered {status}: {body[:200]!r}")
    value = orjson.loads(body)
    return len(value) if isinstance(value, dict) else 0


def check_wrk_errors(ctx: Context, label: str, result: dict[str, Any]) -> None:
    """Flags non-2xx answers and socket errors of one wrk run as failures.

    wrk counts status >= 400 as "Non-2xx or 3xx"; every endpoint here answers 200.
    """
    if result["non_2xx"]:
        ctx.fail(f"{label}: {result['non_2xx']} of {result['requests']} responses were not 2xx")
    errors = {kind: count for kind, count in result["socket_errors"].items() if count}
    if errors:
        ctx.fail(f"{label}: socket errors {errors}")


def check_posts_stored(ctx: Context, server: HearthServer, post: dict[str, Any],
                       label: str = "POST /blessing") -> dict[str, Any]:
    """Checks the server still answers after the POST run and that /blessing holds one
    child per successful POST.

    wrk does not count requests still in flight when its clock stops, but the server may
    complete them, so up to one extra child per connection is expected.
    """
    server.ensure_alive("after the POST run")
    status, _ = server.request("GET", "/.health")
    if status != 200:
        ctx.fail(f"GET /.health answered {status} after the POST run")
    children = count_children(server, "/blessing")
    successful = post["requests"] - post["non_2xx"]
    extra = children - successful
    matches = 0 <= extra <= WRK_CONNECTIONS
    ctx.row(f"{label} children vs 2xx POSTs",
            f"{children:,} vs {successful:,} (in flight at stop: {extra:+d})", ok=matches)
    if not matches:
        ctx.fail(f"/blessing has {children} children but wrk saw {successful} successful POSTs")
    return {"blessing_children": children, "successful_posts": successful,
            "children_minus_posts": extra}


HTTP_RUNS = (
    # (key, label, method, path)
    ("health", "GET /.health", "GET", "/.health"),
    ("get", "GET /bench/item.json", "GET", "/bench/item.json"),
    ("post", "POST /blessing.json", "POST", "/blessing.json"),
)


def print_http_table(runs: dict[str, dict[str, Any]]) -> None:
    """The throughput/latency table of the HTTP section."""
    rows = []
    for key, label, _, _ in HTTP_RUNS:
        if key not in runs:
            continue
        run = runs[key]
        errors = sum(run["socket_errors"].values())
        rows.append([label, f"{run['requests_per_s']:,.0f}", f"{run.get('p50_ms', 0):.3f}",
                     f"{run.get('p99_ms', 0):.3f}", f"{run['requests']:,}",
                     str(run["non_2xx"]), str(errors)])
    print_table(["Endpoint", "Req/s", "p50 ms", "p99 ms", "Requests", "Non-2xx", "Sock err"],
                rows, right={1, 2, 3, 4, 5, 6})


@section("http", f"HTTP throughput with wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS}: health, GET, POST")
def bench_http(ctx: Context) -> dict[str, Any]:
    """wrk against a live server: /.health (framework floor), a small-object GET and a
    ~200-byte POST, in that order; then check every POST was stored."""
    hearth = ctx.binary("hearth")
    if shutil.which("wrk") is None:
        raise BenchmarkError("wrk not found: run `make deps` (or apt-get install -y wrk)")
    record = orjson.dumps(SMALL_RECORD)
    script = write_post_script(ctx.workdir / "post.lua", record)
    warmup = 1 if ctx.quick else 2
    runs: dict[str, dict[str, Any]] = {}
    figures: dict[str, Any] = {"record_bytes": len(record), "seconds": ctx.http_seconds,
                               "threads": WRK_THREADS, "connections": WRK_CONNECTIONS,
                               "runs": runs}

    with HearthServer(hearth, ctx.workdir) as server:
        print(f"hearth serving on {HOST}:{server.port}; record {len(record)} bytes", flush=True)
        seed_and_check(server, record)
        run_wrk(server.port, "/.health", warmup)  # warm-up, not recorded
        for key, label, method, path in HTTP_RUNS:
            print(f"wrk {label} for {ctx.http_seconds}s ...", flush=True)
            runs[key] = run_wrk(server.port, path, ctx.http_seconds,
                                script if method == "POST" else None)
            server.ensure_alive(f"during the {label} run")
            check_wrk_errors(ctx, label, runs[key])
        print_http_table(runs)
        add_http_rows(ctx, runs)
        figures.update(check_posts_stored(ctx, server, runs["post"]))
        figures["server_memory_kb"] = server.memory_kb()
        _, health_body = server.request("GET", "/.health")
    figures["nginx"] = nginx_floor(ctx, runs["health"], health_body)
    return figures


def nginx_floor(ctx: Context, health: dict[str, Any], body: bytes) -> dict[str, Any] | None:
    """wrk against nginx serving `body` (the bytes of Hearth's `/.health`) as a static
    file, right after Hearth's runs, and the row comparing the two."""
    binary = nginx_binary()
    if binary is None:
        print("nginx not found: the HTTP floor comparison is skipped (make system-deps installs it)")
        return None
    try:
        with NginxServer(binary, ctx.workdir, body) as nginx:
            run_wrk(nginx.port, "/health.json", 1 if ctx.quick else 2)  # warm-up
            print(f"wrk nginx static file ({len(body)} bytes) for {ctx.http_seconds}s ...", flush=True)
            run = run_wrk(nginx.port, "/health.json", ctx.http_seconds)
            check_wrk_errors(ctx, "nginx", run)
    except BenchmarkError as error:
        # Hearth's own rows stand; only the comparison is missing.
        ctx.fail(f"nginx floor comparison skipped: {error}")
        return None
    ctx.row("HTTP floor: Hearth /.health / nginx static file",
            f"{health['requests_per_s']:,.0f} vs {run['requests_per_s']:,.0f} req/s",
            ratio=ratio(health["requests_per_s"], run["requests_per_s"]), target=0.7)
    return run


def add_http_rows(ctx: Context, runs: dict[str, dict[str, Any]]) -> None:
    """Summary rows: the GET/health ratio against its target, then per-endpoint figures."""
    health, get = runs["health"]["requests_per_s"], runs["get"]["requests_per_s"]
    ctx.row("HTTP data GET / health", f"{get:,.0f} vs {health:,.0f} req/s",
            ratio=ratio(get, health), target=0.85)
    for key, label, _, _ in HTTP_RUNS:
        run = runs[key]
        ctx.row(f"HTTP {label}", f"{run['requests_per_s']:,.0f} req/s, "
                f"p50 {run.get('p50_ms', 0):.2f} ms, p99 {run.get('p99_ms', 0):.2f} ms")


# --------------------------------------------------------------------------------------
# Redis server process (the durable-write baseline)
# --------------------------------------------------------------------------------------


def redis_command(port: int, *arguments: str, timeout: float = 2.0) -> bytes:
    """Sends one command to Redis on 127.0.0.1:`port` and returns the raw RESP reply
    (small replies only: one read)."""
    request = f"*{len(arguments)}\r\n".encode()
    for argument in arguments:
        encoded = argument.encode()
        request += b"$%d\r\n%s\r\n" % (len(encoded), encoded)
    with socket.create_connection((HOST, port), timeout=timeout) as connection:
        connection.sendall(request)
        return connection.recv(65536)


class RedisServer(ServerProcess):
    """Debian's `redis-server` on loopback with its own scratch directory, AOF on and
    fsync'ed on every write (`--appendfsync always`), no RDB snapshots; ready once it
    answers PING.

    Use as a context manager: the process is stopped (SIGTERM, then SIGKILL) on exit.
    """

    name = "redis-server"
    not_ready = "no PONG"

    def __init__(self, binary: str, workdir: Path) -> None:
        super().__init__(workdir / "redis-data", workdir / "redis.log")
        self.binary = binary

    def command(self, port: int) -> list[str]:
        """`redis-server` on 127.0.0.1:`port`, AOF fsync'ed on every write, no RDB."""
        return [self.binary, "--port", str(port), "--bind", HOST,
                "--dir", str(self.data_dir), "--appendonly", "yes",
                "--appendfsync", "always", "--save", "", "--daemonize", "no"]

    def probe(self, port: int) -> str | None:
        """PING: None on +PONG, else (the start of) what it answered."""
        reply = redis_command(port, "PING", timeout=1)
        return None if reply.startswith(b"+PONG") else f"PING answered {reply[:100]!r}"

    def config(self, name: str) -> str:
        """The value of one configuration parameter (CONFIG GET), "" if unknown."""
        reply = redis_command(self.port, "CONFIG", "GET", name)
        # *2\r\n$<n>\r\n<name>\r\n$<n>\r\n<value>\r\n
        parts = reply.split(b"\r\n")
        return parts[4].decode(errors="replace") if len(parts) > 4 else ""


class NginxServer(ServerProcess):
    """Debian's `nginx` on loopback serving one static file: the HTTP floor Hearth's own
    `/.health` is compared with (issue 18: at least 0.7x). One worker per core, no access
    log, keep-alive on (its defaults otherwise)."""

    name = "nginx"
    not_ready = "/health.json not 200"

    def __init__(self, binary: str, workdir: Path, body: bytes) -> None:
        super().__init__(workdir / "nginx-root", workdir / "nginx.log")
        self.binary = binary
        self.workdir = workdir
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "health.json").write_bytes(body)

    def command(self, port: int) -> list[str]:
        """`nginx` in the foreground with a configuration of its own on 127.0.0.1:`port`."""
        config = self.workdir / "nginx.conf"
        config.write_text(
            ""
            # As root, nginx's workers would run as nobody, who cannot read the scratch folder.
            + ("user root;\n" if os.geteuid() == 0 else "")
            + "worker_processes auto;\ndaemon off;\nmaster_process on;\n"
            f"pid {self.workdir / 'nginx.pid'};\nerror_log {self.workdir / 'nginx-error.log'};\n"
            "events { worker_connections 4096; }\n"
            "http {\n  access_log off;\n  default_type application/json;\n"
            + "".join(f"  {kind}_temp_path {self.workdir / ('nginx-' + kind)};\n"
                      for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")) +
            f"  server {{ listen {HOST}:{port}; root {self.data_dir}; }}\n}}\n")
        return [self.binary, "-c", str(config), "-e", str(self.workdir / "nginx-error.log")]

    def probe(self, port: int) -> str | None:
        """GET /health.json: None on 200."""
        status, _ = http_request(port, "GET", "/health.json", timeout=1)
        return None if status == 200 else f"/health.json answered {status}"


def nginx_binary() -> str | None:
    """Debian's nginx (in /usr/sbin, which is not always on PATH)."""
    return shutil.which("nginx") or next(
        (path for path in ("/usr/sbin/nginx", "/sbin/nginx") if os.access(path, os.X_OK)), None)


def directory_bytes(path: Path) -> int:
    """Total size of the regular files under `path`."""
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())


def parse_redis_benchmark(output: str) -> dict[str, Any]:
    """Requests/s (and p50, which Redis 7 prints) of the SET test from `redis-benchmark -q`.

    The -q output redraws a progress line with carriage returns (newlines once read as
    text); the final figure is the last "SET: <n> requests per second".
    """
    matches = re.findall(r"SET: ([\d.]+) requests per second(?:, p50=([\d.]+) msec)?", output)
    if not matches:
        raise BenchmarkError(f"could not parse redis-benchmark output:\n{output[-2000:]}")
    rate, p50 = matches[-1]
    result: dict[str, Any] = {"requests_per_s": float(rate)}
    if p50:
        result["p50_ms"] = float(p50)
    return result


def run_redis_benchmark(port: int, requests: int, timeout: float) -> dict[str, Any]:
    """`redis-benchmark -c32 -t set -d 200 -q` against Redis on 127.0.0.1:`port`."""
    tool = shutil.which("redis-benchmark")
    if tool is None:
        raise BenchmarkError("redis-benchmark not found: run `make system-deps` "
                             "(or apt-get install -y redis-server)")
    command = [tool, "-h", HOST, "-p", str(port), "-c", str(WRK_CONNECTIONS), "-n", str(requests),
               "-t", "set", "-d", str(REDIS_VALUE_BYTES), "-q"]
    started = time.monotonic()
    output = run_command(command, timeout=timeout)
    elapsed = time.monotonic() - started
    if re.search(r"error", output, re.IGNORECASE):
        raise BenchmarkError(f"redis-benchmark reported errors:\n{output[-2000:]}")
    result = parse_redis_benchmark(output)
    result.update({"requests": requests, "elapsed_s": round(elapsed, 2),
                   "command": " ".join(command),
                   "output": [line.strip() for line in output.splitlines()
                              if "requests per second" in line][-1]})
    return result


# --------------------------------------------------------------------------------------
# Section: durable write throughput
# --------------------------------------------------------------------------------------


def hearth_post_run(ctx: Context, hearth: Path, policy: str, script: Path,
                    record: bytes) -> dict[str, Any]:
    """One Hearth POST run with `--fsync <policy>` on a fresh data directory: warm up on
    /warmup, wrk POST /blessing.json, then check every 2xx POST was stored."""
    workdir = ctx.workdir / f"durable-{policy}"
    try:
        with HearthServer(hearth, workdir, ["--fsync", policy]) as server:
            print(f"hearth --fsync {policy} serving on {HOST}:{server.port}", flush=True)
            seed_and_check(server, record)
            run_wrk(server.port, "/warmup.json", 1 if ctx.quick else 2, script)  # not recorded
            label = f"POST --fsync {policy}"
            print(f"wrk {label} /blessing.json for {ctx.http_seconds}s ...", flush=True)
            run = run_wrk(server.port, "/blessing.json", ctx.http_seconds, script)
            server.ensure_alive(f"during the {label} run")
            check_wrk_errors(ctx, label, run)
            run.update(check_posts_stored(ctx, server, run, label))
            run["server_memory_kb"] = server.memory_kb()
            run["data_dir_bytes"] = directory_bytes(server.data_dir)
            if f"fsync={policy}" not in server.log_path.read_text(errors="replace"):
                ctx.fail(f"hearth's log does not confirm fsync={policy}:\n{server.log_tail()}")
        return run
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def redis_set_run(ctx: Context, redis: str) -> dict[str, Any]:
    """Redis SET with AOF fsync'ed on every write: a calibration/warm-up run, then a run
    sized to last about `http_seconds`."""
    workdir = ctx.workdir / "redis"
    timeout = ctx.http_seconds * 10 + 60
    try:
        with RedisServer(redis, workdir) as server:
            print(f"redis-server serving on {HOST}:{server.port}", flush=True)
            settings = {name: server.config(name) for name in ("appendonly", "appendfsync", "save")}
            if settings["appendonly"] != "yes" or settings["appendfsync"] != "always":
                raise BenchmarkError(f"Redis is not fsync'ing every write: {settings}")
            calibration = run_redis_benchmark(server.port, 5_000 if ctx.quick else 20_000, timeout)
            requests = max(10_000, int(round(calibration["requests_per_s"] * ctx.http_seconds, -3)))
            print(f"redis-benchmark SET x {requests:,} "
                  f"(calibrated at {calibration['requests_per_s']:,.0f} req/s) ...", flush=True)
            run = run_redis_benchmark(server.port, requests, timeout)
            server.ensure_alive("during the SET run")
            run["calibration_requests_per_s"] = calibration["requests_per_s"]
            run["settings"] = settings
            run["aof_bytes"] = directory_bytes(server.data_dir)
        return run
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def print_durable_table(runs: dict[str, dict[str, Any]]) -> None:
    """The throughput/latency table of the durable section."""
    labels = (("always", "Hearth POST --fsync always"), ("redis", "Redis SET appendfsync always"),
              ("none", "Hearth POST --fsync none"))
    rows = []
    for key, label in labels:
        if key not in runs:
            continue
        run = runs[key]
        p99 = run.get("p99_ms")
        rows.append([label, f"{run['requests_per_s']:,.0f}", f"{run.get('p50_ms', 0):.3f}",
                     "" if p99 is None else f"{p99:.3f}", f"{run['requests']:,}"])
    print_table(["Server", "Req/s", "p50 ms", "p99 ms", "Requests"], rows, right={1, 2, 3, 4})


@section("durable", "Durable writes: Hearth POST --fsync always vs Redis SET appendfsync always")
def bench_durable(ctx: Context) -> dict[str, Any]:
    """~200-byte writes acknowledged only once fdatasync'ed: Hearth (group commit) with
    wrk, then Redis (AOF, appendfsync always) with redis-benchmark at the same
    concurrency, then Hearth with --fsync none to show what durability costs."""
    hearth = ctx.binary("hearth")
    redis = shutil.which("redis-server")
    if shutil.which("wrk") is None:
        raise BenchmarkError("wrk not found: run `make deps` (or apt-get install -y wrk)")
    if redis is None or shutil.which("redis-benchmark") is None:
        raise BenchmarkError("redis-server / redis-benchmark not found: run `make system-deps` "
                             "(or apt-get install -y redis-server)")
    record = orjson.dumps(SMALL_RECORD)
    script = write_post_script(ctx.workdir / "post.lua", record)
    runs: dict[str, dict[str, Any]] = {}
    figures: dict[str, Any] = {"record_bytes": len(record), "seconds": ctx.http_seconds,
                               "threads": WRK_THREADS, "connections": WRK_CONNECTIONS,
                               "redis_version": redis_version(), "runs": runs}

    # Hearth durable and Redis back to back, so the pair sees the same machine load.
    first_row = len(ctx.rows)
    runs["always"] = hearth_post_run(ctx, hearth, "always", script, record)
    runs["redis"] = redis_set_run(ctx, redis)
    runs["none"] = hearth_post_run(ctx, hearth, "none", script, record)
    print_durable_table(runs)
    check_rows = ctx.rows[first_row:]  # the stored-children checks go after the figures
    del ctx.rows[first_row:]

    durable, redis_rate = runs["always"]["requests_per_s"], runs["redis"]["requests_per_s"]
    volatile = runs["none"]["requests_per_s"]
    ctx.row("Durable POST (--fsync always)",
            f"{durable:,.0f} req/s, p50 {runs['always'].get('p50_ms', 0):.2f} ms, "
            f"p99 {runs['always'].get('p99_ms', 0):.2f} ms")
    ctx.row("Redis SET (appendfsync always)",
            f"{redis_rate:,.0f} req/s, p50 {runs['redis'].get('p50_ms', 0):.2f} ms")
    ctx.row("Durable writes Hearth/Redis", f"{durable:,.0f} vs {redis_rate:,.0f} req/s",
            ratio=ratio(durable, redis_rate), target=0.8)
    ctx.row("Durable writes Hearth/Firebase limit",
            f"{durable:,.0f} vs {FIREBASE_WRITES_PER_SECOND:,} writes/s",
            ratio=ratio(durable, FIREBASE_WRITES_PER_SECOND), target=20.0)
    ctx.row("POST --fsync none (not durable)", f"{volatile:,.0f} req/s, "
            f"p50 {runs['none'].get('p50_ms', 0):.2f} ms, p99 {runs['none'].get('p99_ms', 0):.2f} ms")
    ctx.row("Durable POST always / none", f"{durable:,.0f} vs {volatile:,.0f} req/s",
            ratio=ratio(durable, volatile))
    ctx.rows.extend(check_rows)
    return figures


# --------------------------------------------------------------------------------------
# Section: PostgreSQL storage
# --------------------------------------------------------------------------------------


def parse_pgbench_tps(output: str) -> float:
    """The `tps = …` figure of pgbench's report."""
    match = re.search(r"tps = ([0-9.]+)", output)
    if match is None:
        raise BenchmarkError(f"pgbench printed no tps:\n{output[-500:]}")
    return float(match.group(1))


FOLLOWER_STREAMS = 100


def follower_latency(ctx: Context, hearth: Path, cluster: Any) -> dict[str, Any]:
    """Two nodes on one PostgreSQL database; HearthBench fanout holds FOLLOWER_STREAMS SSE
    streams on node B and PUTs 100 writes/s to node A: the delay from a write's send to its
    event on node B (A's commit, its notification, B's read of the record, the fan-out)."""
    bench = ctx.binary("HearthBench")
    url = cluster.create_database("follow")
    rules = '{"rules": {".read": true, ".write": true}}'
    writer_dir, follower_dir = ctx.workdir / "pg-writer", ctx.workdir / "pg-follower"
    try:
        with HearthServer(hearth, writer_dir, ["--storage", url], rules=rules) as writer:
            # The namespace exists before the follower starts (the streams' path stays empty, so
            # their first event carries no timestamp).
            status, _ = writer.request("PUT", "/warmup.json", b'true')
            if status != 200:
                raise BenchmarkError(f"the writer refused the first write: {status}")
            with HearthServer(hearth, follower_dir, ["--storage", url,
                                                     "--max-streams-per-client", str(2 * FOLLOWER_STREAMS)],
                              rules=rules) as follower:
                print(f"{FOLLOWER_STREAMS} SSE streams on node B, {STREAM_WRITES_PER_SECOND} writes/s "
                      f"on node A for {ctx.http_seconds}s ...", flush=True)
                output = run_command([str(bench), "fanout", str(follower.port), str(FOLLOWER_STREAMS),
                                      str(ctx.http_seconds), str(STREAM_WRITES_PER_SECOND), str(writer.port)],
                                     timeout=ctx.http_seconds * 4 + 120)
                follower.ensure_alive("during the follower run")
                return last_json_line(output, "HearthBench fanout (follower)")
    finally:
        shutil.rmtree(writer_dir, ignore_errors=True)
        shutil.rmtree(follower_dir, ignore_errors=True)


def three_nodes(ctx: Context, hearth: Path, cluster: Any, script: Path) -> dict[str, Any]:
    """Three nodes on one PostgreSQL database, a wrk each (one thread, a third of the
    connections) POSTing at once: first each to a namespace of its own (the way the nginx
    example routes them), then all three to one namespace (every commit races the others'
    at the fence; the losers are applied again)."""
    url = cluster.create_database("three")
    workdirs = [ctx.workdir / f"pg-node{i}" for i in range(3)]
    connections = max(1, WRK_CONNECTIONS // 3)
    results: dict[str, Any] = {}
    try:
        servers = [HearthServer(hearth, workdir, ["--storage", url, "--create-namespaces"]) for workdir in workdirs]
        for server in servers:
            server.start()
        try:
            for label, namespaces in (("own", ["n0", "n1", "n2"]), ("shared", ["shared"] * 3)):
                print(f"wrk POST on three nodes, {'a namespace each' if label == 'own' else 'one namespace'}, "
                      f"{ctx.http_seconds}s ...", flush=True)
                runs: list[dict[str, Any]] = [{}, {}, {}]

                def load(index: int) -> None:
                    runs[index] = run_wrk(servers[index].port, f"/blessing.json?ns={namespaces[index]}", ctx.http_seconds,
                                          script, threads=1, connections=connections)

                threads = [threading.Thread(target=load, args=(i,)) for i in range(3)]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                for index, run in enumerate(runs):
                    servers[index].ensure_alive(f"during the three-node run ({label})")
                    check_wrk_errors(ctx, f"POST on node {index} ({label})", run)
                successful = sum(run["requests"] - run["non_2xx"] for run in runs)
                time.sleep(1)  # node 0 takes the other nodes' last records
                stored = 0
                for namespace in sorted(set(namespaces)):
                    status, body = servers[0].request("GET", f"/blessing.json?ns={namespace}&shallow=true")
                    stored += len(orjson.loads(body) or {}) if status == 200 else 0
                extra = stored - successful
                ctx.row(f"Three nodes ({label}): stored vs 2xx POSTs", f"{stored:,} vs {successful:,} (in flight at stop: {extra:+d})",
                        ok=0 <= extra <= WRK_CONNECTIONS)
                results[label] = {"requests_per_s": sum(run["requests_per_s"] for run in runs),
                                  "per_node": [run["requests_per_s"] for run in runs],
                                  "p99_ms": max(run.get("p99_ms", 0) for run in runs), "stored": stored}
        finally:
            for server in servers:
                server.stop()
    finally:
        for workdir in workdirs:
            shutil.rmtree(workdir, ignore_errors=True)
    return results


@section("postgres", "Durable POST with PostgreSQL storage vs file storage vs pgbench one-row inserts; three nodes; node-to-node latency")
def bench_postgres(ctx: Context) -> dict[str, Any]:
    """A private PostgreSQL 15 cluster (as the tests start one): Hearth POST with file storage
    (--fsync always), Hearth POST with --storage postgres://, then pgbench inserting the same
    record as one row per transaction over as many connections as wrk uses. Every write is
    acknowledged only once durable (fdatasync, or a commit with synchronous_commit on)."""
    sys.path.insert(0, str(REPO_ROOT / "Tests" / "Compat"))
    from postgres_cluster import PostgresCluster

    hearth = ctx.binary("hearth")
    if shutil.which("wrk") is None:
        raise BenchmarkError("wrk not found: run `make deps` (or apt-get install -y wrk)")
    record = orjson.dumps(SMALL_RECORD)
    script = write_post_script(ctx.workdir / "postgres-post.lua", record)
    cluster = PostgresCluster()
    runs: dict[str, dict[str, Any]] = {}
    try:
        runs["file"] = hearth_post_run(ctx, hearth, "always", script, record)
        url = cluster.create_database("hearthbench")
        workdir = ctx.workdir / "postgres"
        try:
            with HearthServer(hearth, workdir, ["--storage", url]) as server:
                print(f"hearth --storage {url} serving on {HOST}:{server.port}", flush=True)
                seed_and_check(server, record)
                run_wrk(server.port, "/warmup.json", 1 if ctx.quick else 2, script)  # not recorded
                print(f"wrk POST /blessing.json (PostgreSQL storage) for {ctx.http_seconds}s ...", flush=True)
                run = run_wrk(server.port, "/blessing.json", ctx.http_seconds, script)
                server.ensure_alive("during the PostgreSQL POST run")
                check_wrk_errors(ctx, "POST (PostgreSQL storage)", run)
                run.update(check_posts_stored(ctx, server, run, "POST (PostgreSQL storage)"))
                runs["postgres"] = run
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        runs["follower"] = follower_latency(ctx, hearth, cluster)
        runs["three"] = three_nodes(ctx, hearth, cluster, script)
        cluster.create_database("pgbench")
        cluster.sql("pgbench", "CREATE TABLE records (id bigserial PRIMARY KEY, body jsonb NOT NULL)")
        insert = ctx.workdir / "insert.sql"
        insert.write_text("INSERT INTO records (body) VALUES ('" + record.decode().replace("'", "''") + "');\n")
        print(f"pgbench one-row inserts, {WRK_CONNECTIONS} connections, for {ctx.http_seconds}s ...", flush=True)
        output = run_command([str(Path("/usr/lib/postgresql/15/bin/pgbench")), "-h", HOST, "-p", str(cluster.port),
                              "-U", "postgres", "-n", "-c", str(WRK_CONNECTIONS), "-j", str(WRK_THREADS),
                              "-T", str(ctx.http_seconds), "-f", str(insert), "pgbench"],
                             timeout=ctx.http_seconds * 4 + 60)
        runs["pgbench"] = {"requests_per_s": parse_pgbench_tps(output)}
    finally:
        cluster.destroy()
    print_table(["Writer", "Writes/s", "p50 ms", "p99 ms"], [
        ["Hearth POST, file storage (--fsync always)", f"{runs['file']['requests_per_s']:,.0f}",
         f"{runs['file'].get('p50_ms', 0):.2f}", f"{runs['file'].get('p99_ms', 0):.2f}"],
        ["Hearth POST, PostgreSQL storage", f"{runs['postgres']['requests_per_s']:,.0f}",
         f"{runs['postgres'].get('p50_ms', 0):.2f}", f"{runs['postgres'].get('p99_ms', 0):.2f}"],
        [f"pgbench INSERT, {WRK_CONNECTIONS} connections", f"{runs['pgbench']['requests_per_s']:,.0f}", "", ""],
    ], right={1, 2, 3})
    pg_rate = runs["postgres"]["requests_per_s"]
    ctx.row("Durable POST, PostgreSQL / file storage",
            f"{pg_rate:,.0f} vs {runs['file']['requests_per_s']:,.0f} req/s",
            ratio=ratio(pg_rate, runs["file"]["requests_per_s"]))
    three = runs["three"]
    print_table(["Three nodes", "Writes/s", "per node", "p99 ms"], [
        [f"a namespace each", f"{three['own']['requests_per_s']:,.0f}",
         " / ".join(f"{rate:,.0f}" for rate in three["own"]["per_node"]), f"{three['own']['p99_ms']:.2f}"],
        [f"one namespace", f"{three['shared']['requests_per_s']:,.0f}",
         " / ".join(f"{rate:,.0f}" for rate in three["shared"]["per_node"]), f"{three['shared']['p99_ms']:.2f}"],
    ], right={1, 3})
    ctx.row("Durable POST over three nodes (a namespace each) / one node, PostgreSQL storage",
            f"{three['own']['requests_per_s']:,.0f} vs {pg_rate:,.0f} writes/s",
            ratio=ratio(three["own"]["requests_per_s"], pg_rate))
    ctx.row("Durable POST over three nodes, one namespace / a namespace each",
            f"{three['shared']['requests_per_s']:,.0f} vs {three['own']['requests_per_s']:,.0f} writes/s",
            ratio=ratio(three["shared"]["requests_per_s"], three["own"]["requests_per_s"]))
    follower = runs["follower"]
    print(f"node A -> node B stream delivery: p50 {follower['p50_ms']:.1f} ms, p99 {follower['p99_ms']:.1f} ms, "
          f"{follower['probe_events']}/{follower['probe_events_expected']} probe events, {follower['writes']} writes")
    ctx.row(f"Stream p99 on node B, write on node A (ratio = 100 ms / p99)",
            f"p50 {follower['p50_ms']:.1f} ms, p99 {follower['p99_ms']:.1f} ms, max {follower['max_ms']:.1f} ms",
            ratio=ratio(100.0, follower["p99_ms"]), target=1.0)
    ctx.row("Durable POST on PostgreSQL / pgbench one-row inserts",
            f"{pg_rate:,.0f} vs {runs['pgbench']['requests_per_s']:,.0f} writes/s",
            ratio=ratio(pg_rate, runs["pgbench"]["requests_per_s"]))
    return {"record_bytes": len(record), "seconds": ctx.http_seconds, "runs": runs}


REALTIME_WINDOW = 16


@section("realtime", "Durable sets over the realtime protocol (WebSocket) vs REST POST, same server, same run")
def bench_realtime(ctx: Context) -> dict[str, Any]:
    """One Hearth with --fsync always: wrk POSTs the ~200-byte record with 32 connections,
    then HearthBench realtime-writes makes the same writes as SDK `set`s over 32 WebSocket
    connections, each keeping REALTIME_WINDOW writes outstanding (the SDKs pipeline writes on
    their one connection; a REST client waits for each answer). Target: >= 2x REST."""
    hearth, bench = ctx.binary("hearth"), ctx.binary("HearthBench")
    if shutil.which("wrk") is None:
        raise BenchmarkError("wrk not found: run `make deps` (or apt-get install -y wrk)")
    record = orjson.dumps(SMALL_RECORD)
    script = write_post_script(ctx.workdir / "realtime-post.lua", record)
    workdir = ctx.workdir / "realtime"
    figures: dict[str, Any] = {"connections": WRK_CONNECTIONS, "window": REALTIME_WINDOW, "seconds": ctx.http_seconds}
    try:
        with HearthServer(hearth, workdir, ["--fsync", "always"]) as server:
            print(f"hearth --fsync always serving on {HOST}:{server.port}", flush=True)
            run_wrk(server.port, "/warmup.json", 1 if ctx.quick else 2, script)  # not recorded
            print(f"wrk POST /blessing.json for {ctx.http_seconds}s ...", flush=True)
            rest = run_wrk(server.port, "/blessing.json", ctx.http_seconds, script)
            check_wrk_errors(ctx, "POST (realtime section)", rest)
            print(f"HearthBench realtime-writes, {WRK_CONNECTIONS} sockets x {REALTIME_WINDOW} outstanding "
                  f"for {ctx.http_seconds}s ...", flush=True)
            output = run_command([str(bench), "realtime-writes", str(server.port), str(WRK_CONNECTIONS),
                                  str(REALTIME_WINDOW), str(ctx.http_seconds), record.decode()],
                                 timeout=ctx.http_seconds * 4 + 60)
            socket_run = last_json_line(output, "HearthBench realtime-writes")
            server.ensure_alive("after the realtime writes")
            status, body = server.request("GET", "/bench.json?shallow=true")
            stored = len(orjson.loads(body) or {}) if status == 200 else -1
            if socket_run["failed"] or stored < socket_run["writes"]:
                ctx.fail(f"realtime writes: {socket_run['failed']} failed, {stored} stored of "
                         f"{socket_run['writes']} acknowledged")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    figures.update({"rest": rest, "socket": socket_run})
    rest_rate, socket_rate = rest["requests_per_s"], socket_run["writes_per_s"]
    print_table(["Client", "Writes/s", "p50 ms", "p99 ms"],
                [["REST POST (wrk, 32 connections)", f"{rest_rate:,.0f}", f"{rest.get('p50_ms', 0):.2f}",
                  f"{rest.get('p99_ms', 0):.2f}"],
                 [f"Realtime set (32 sockets x {REALTIME_WINDOW})", f"{socket_rate:,.0f}",
                  f"{socket_run['p50_ms']:.2f}", f"{socket_run['p99_ms']:.2f}"]],
                right={1, 2, 3})
    ctx.row("Durable realtime sets / REST POST", f"{socket_rate:,.0f} vs {rest_rate:,.0f} writes/s",
            ratio=ratio(socket_rate, rest_rate), target=2.0)
    return figures


# --------------------------------------------------------------------------------------
# Section: recovery time
# --------------------------------------------------------------------------------------


@section("recovery", "Cold-open recovery of a log of small records (HearthBench recovery)")
def bench_recovery(ctx: Context) -> dict[str, Any]:
    """HearthBench writes a log of N small set records, then times a cold open (MANIFEST,
    segment read, CRC checks, decoding, replay). Target: under 1.5 s for 1M records."""
    bench = ctx.binary("HearthBench")
    records = RECOVERY_RECORDS_QUICK if ctx.quick else RECOVERY_RECORDS
    directory = ctx.workdir / "recovery"
    print(f"HearthBench recovery, {records:,} records ...", flush=True)
    try:
        output = run_command([str(bench), "recovery", str(directory), str(records)], timeout=1800)
    finally:
        shutil.rmtree(directory, ignore_errors=True)  # ~140 MB for 1M records
    figures = last_json_line(output, "HearthBench recovery")
    if figures.get("records") != records:
        ctx.fail(f"HearthBench recovered {figures.get('records')} records, asked for {records}")
    seconds = figures["recovery_seconds"]
    print_table(["Records", "Log MB", "Recovery s", "Records/s"],
                [[f"{figures['records']:,}", f"{figures['log_bytes'] / 1e6:.1f}",
                  f"{seconds:.3f}", f"{figures['records_per_second']:,.0f}"]],
                right={0, 1, 2, 3})
    result = (f"{seconds:.2f} s for {figures['records']:,} records "
              f"({figures['records_per_second']:,.0f}/s, {figures['log_bytes'] / 1e6:.0f} MB)")
    if ctx.quick:
        # The target is for 1M records; the quick run is too small to judge it.
        ctx.row("Recovery (target n/a in --quick)", result)
    else:
        ctx.row(f"Recovery < {RECOVERY_TARGET_SECONDS:g} s (ratio = {RECOVERY_TARGET_SECONDS:g} s / time)",
                result, ratio=ratio(RECOVERY_TARGET_SECONDS, seconds), target=1.0)
    figures["target_seconds"] = None if ctx.quick else RECOVERY_TARGET_SECONDS
    return figures


# --------------------------------------------------------------------------------------
# Section: queries from maintained indexes
# --------------------------------------------------------------------------------------

QUERY_CHILDREN = 1_000_000
QUERY_CHILDREN_QUICK = 100_000
QUERY_SPEEDUP_TARGET = 100.0
INDEX_UPKEEP_TARGET = 0.8  # writes with the index / without: upkeep under 20%
QUERY_PATH = '.json?orderBy=%22ts%22&limitToLast=50'


@section("queries", "limitToLast=50 on a child index vs a full scan; index upkeep on writes")
def bench_queries(ctx: Context) -> dict[str, Any]:
    """In-process (HearthBench query): the query answered from the index and by sorting
    every child, and in-memory write throughput into the indexed location with and without
    the index. Over HTTP: wrk on the indexed query; the same query as an admin on an
    unindexed copy of the data (a scan, timed a few times); durable POSTs into the indexed
    and the unindexed location. Targets: index >= 100x faster than the scan at 1,000,000
    children; index upkeep < 20% of write throughput."""
    bench, hearth = ctx.binary("HearthBench"), ctx.binary("hearth")
    children = QUERY_CHILDREN_QUICK if ctx.quick else QUERY_CHILDREN
    print(f"HearthBench query, {children:,} children ...", flush=True)
    figures = last_json_line(run_command([str(bench), "query", str(children), "0.5" if ctx.quick else "2"],
                                         timeout=1800), "HearthBench query")
    memory_upkeep = ratio(figures["writes_per_second_with_index"], figures["writes_per_second_without_index"])
    print_table(["Children", "Build s", "Indexed us", "Scan us", "Speedup", "Writes/s indexed", "Writes/s plain"],
                [[f"{children:,}", f"{figures['index_build_seconds']:.2f}", f"{figures['indexed_query_us']:.1f}",
                  f"{figures['scan_query_us']:,.0f}", f"{figures['speedup']:,.0f}",
                  f"{figures['writes_per_second_with_index']:,.0f}", f"{figures['writes_per_second_without_index']:,.0f}"]],
                right={0, 1, 2, 3, 4, 5, 6})

    token = "bench-admin-token-" + "0" * 24
    rules = '{"rules": {".read": true, ".write": "auth == null", "indexed": {".indexOn": ["ts"]}}}'
    rng = random.Random(5)
    data = orjson.dumps({f"k{index:08d}": {"device": f"d-{rng.randrange(500)}", "ok": True,
                                          "ts": rng.randrange(1_000_000_000)} for index in range(children)})
    record = orjson.dumps({"device": "d-1", "ok": True, "ts": 123456})
    script = write_post_script(ctx.workdir / "post-ts.lua", record)
    http: dict[str, Any] = {}
    with HearthServer(hearth, ctx.workdir, [f"--admin-token={token}"], rules=rules) as server:
        for location in ("indexed", "plain"):
            status, body = server.request("PUT", f"/{location}.json?print=silent", data)
            if status not in (200, 204):
                raise BenchmarkError(f"PUT /{location} answered {status}: {body[:200]!r}")
        admin = {"Authorization": f"Bearer {token}"}
        indexed_body = server.request("GET", "/indexed" + QUERY_PATH)[1]
        scan_body = server.request("GET", "/plain" + QUERY_PATH, headers=admin)[1]
        if orjson.loads(indexed_body) != orjson.loads(scan_body) or len(orjson.loads(indexed_body)) != 50:
            ctx.fail("the indexed and the scanned query answered differently")
        print(f"wrk indexed query for {ctx.http_seconds}s ...", flush=True)
        http["indexed"] = run_wrk(server.port, "/indexed" + QUERY_PATH, ctx.http_seconds)
        check_wrk_errors(ctx, "indexed query", http["indexed"])
        scans = []
        for _ in range(2 if ctx.quick else 3):
            started = time.perf_counter()
            server.request("GET", "/plain" + QUERY_PATH, headers=admin)
            scans.append(time.perf_counter() - started)
        http["scan_seconds"] = scans
        for location in ("plain", "indexed", "plain", "indexed"):
            print(f"wrk POST /{location}.json for {ctx.http_seconds}s ...", flush=True)
            run = run_wrk(server.port, f"/{location}.json", ctx.http_seconds, script)
            check_wrk_errors(ctx, f"POST /{location}", run)
            best = http.get(f"post_{location}")
            if best is None or run["requests_per_s"] > best["requests_per_s"]:
                http[f"post_{location}"] = run
        server.ensure_alive("after the query runs")
    figures["http"] = http
    indexed_ms = http["indexed"].get("p50_ms", 0.0)
    scan_ms = min(scans) * 1000
    post_ratio = ratio(http["post_indexed"]["requests_per_s"], http["post_plain"]["requests_per_s"])
    print_table(["HTTP", "Result"], [
        ["indexed query", f"{http['indexed']['requests_per_s']:,.0f} req/s, p50 {indexed_ms:.2f} ms, "
                          f"p99 {http['indexed'].get('p99_ms', 0):.2f} ms"],
        ["scan (admin, no index)", f"{scan_ms:,.0f} ms per query"],
        ["POST indexed / plain", f"{http['post_indexed']['requests_per_s']:,.0f} vs "
                                 f"{http['post_plain']['requests_per_s']:,.0f} req/s"],
    ])
    size = "" if not ctx.quick else " (target is for 1M; quick run)"
    ctx.row(f"Query limitToLast=50, index vs scan, {children:,} children{size}",
            f"{figures['indexed_query_us']:.0f} us vs {figures['scan_query_us'] / 1000:,.0f} ms in-process",
            ratio=figures["speedup"], target=QUERY_SPEEDUP_TARGET)
    ctx.row("HTTP indexed query (p50) vs scan", f"{indexed_ms:.2f} ms vs {scan_ms:,.0f} ms; "
            f"{http['indexed']['requests_per_s']:,.0f} req/s", ratio=ratio(scan_ms, indexed_ms),
            target=QUERY_SPEEDUP_TARGET)
    ctx.row("Durable POST into an indexed location / unindexed (upkeep < 20%)",
            f"{http['post_indexed']['requests_per_s']:,.0f} vs {http['post_plain']['requests_per_s']:,.0f} req/s",
            ratio=post_ratio, target=INDEX_UPKEEP_TARGET)
    ctx.row("In-memory writes with the index / without", f"{figures['writes_per_second_with_index']:,.0f} vs "
            f"{figures['writes_per_second_without_index']:,.0f} writes/s", ratio=memory_upkeep)
    return figures


# --------------------------------------------------------------------------------------
# Section: streaming fan-out
# --------------------------------------------------------------------------------------

STREAM_COUNTS = (1_000, 10_000)
STREAM_COUNTS_QUICK = (200, 1_000)
STREAM_WRITES_PER_SECOND = 100
STREAM_P99_TARGET_MS = 20.0  # issue 18 (was 50 ms)
STREAM_RSS_TARGET_MB = 500.0


def _rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _fan_out(bench: Path, port: int, streams: int, seconds: int, pid: int, mode: str = "fanout") -> dict[str, Any]:
    """Runs `HearthBench fanout` (an epoll-free poll-loop client in Swift: `streams` SSE
    connections, writes from its own thread; `fanout-realtime`: realtime protocol listens on
    WebSockets instead) and samples the server's RSS meanwhile."""
    command = [str(bench), mode, str(port), str(streams), str(seconds), str(STREAM_WRITES_PER_SECOND)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = 0.0
    while process.poll() is None:
        peak = max(peak, _rss_mb(pid))
        time.sleep(0.2)
    output, errors = process.communicate()
    if process.returncode != 0:
        raise BenchmarkError(f"HearthBench fanout failed: {errors.decode()[-500:]}")
    result = last_json_line(output.decode(), "HearthBench fanout")
    result["rss_peak_mb"] = peak
    return result


@section("streams", "Fan-out: N SSE streams, then N realtime listens, on one path, 100 writes/s; latency and RSS")
def bench_streams(ctx: Context) -> dict[str, Any]:
    """HearthBench fanout opens N concurrent streams on /feed (N = 1,000 and 10,000) from one
    poll loop, writes /feed/value 100 times a second from its own thread, and measures
    delivery latency (from the writer's clock to the read on 50 probe streams that parse
    events; the others are drained); the server's resident memory is sampled meanwhile.
    Client and server share the machine's two cores. Targets: 1,000 streams at 100 writes/s
    with p99 < 20 ms (issue 18; it was 50 ms before); 10,000 streams held with RSS < 500 MB."""
    hearth, bench = ctx.binary("hearth"), ctx.binary("HearthBench")
    counts = STREAM_COUNTS_QUICK if ctx.quick else STREAM_COUNTS
    if os.environ.get("HEARTH_STREAM_COUNTS"):
        counts = tuple(int(count) for count in os.environ["HEARTH_STREAM_COUNTS"].split(","))
    seconds = 3 if ctx.quick else 10
    runs, realtime_runs = [], []
    for streams in counts:
        for mode, kind, into in (("fanout", "SSE streams", runs), ("fanout-realtime", "realtime listens", realtime_runs)):
            rules = '{"rules": {".read": true, ".write": true}}'
            server = HearthServer(hearth, ctx.workdir / f"{mode}-{streams}", [
                "--fsync", "none", "--max-streams-per-client", str(2 * streams), "--max-connections", str(2 * streams)],
                rules=rules)
            server.new_session = False
            with server:
                print(f"{streams:,} {kind}, {STREAM_WRITES_PER_SECOND} writes/s for {seconds}s ...", flush=True)
                run = _fan_out(bench, server.port, streams, seconds, server.process.pid, mode)
                run["kind"] = kind
                into.append(run)
                server.ensure_alive(f"after {streams} {kind}")
    print_table(["Kind", "Count", "Connect s", "Writes", "Probe events", "p50 ms", "p99 ms", "max ms", "RSS peak MB"],
                [[run["kind"], f"{run['streams']:,}", f"{run['connect_seconds']:.1f}", str(run["writes"]),
                  f"{run['probe_events']}/{run['probe_events_expected']}", f"{run['p50_ms']:.1f}", f"{run['p99_ms']:.1f}",
                  f"{run['max_ms']:.1f}", f"{run['rss_peak_mb']:.0f}"] for run in runs + realtime_runs],
                right={1, 2, 3, 4, 5, 6, 7, 8})
    for run in runs + realtime_runs:
        if run["probe_events"] < run["probe_events_expected"]:
            ctx.fail(f"{run['streams']} {run['kind']}: probes got {run['probe_events']} of {run['probe_events_expected']} events")
    small_rt, large_rt = realtime_runs[0], realtime_runs[-1]
    ctx.row(f"Realtime listens p99, {small_rt['streams']:,} sockets, {small_rt['writes'] / seconds:.0f} writes/s "
            f"(ratio = 20 ms / p99)",
            f"p50 {small_rt['p50_ms']:.1f} ms, p99 {small_rt['p99_ms']:.1f} ms, max {small_rt['max_ms']:.1f} ms",
            ratio=ratio(STREAM_P99_TARGET_MS, small_rt["p99_ms"]), target=1.0)
    ctx.row(f"Server RSS, {large_rt['streams']:,} SSE streams / {large_rt['streams']:,} realtime listens",
            f"{runs[-1]['rss_peak_mb']:.0f} MB vs {large_rt['rss_peak_mb']:.0f} MB",
            ratio=ratio(runs[-1]["rss_peak_mb"], large_rt["rss_peak_mb"]), target=1.0)
    small, large = runs[0], runs[-1]
    ctx.row(f"Fan-out p99, {small['streams']:,} streams, {small['writes'] / seconds:.0f} writes/s (ratio = 20 ms / p99)",
            f"p50 {small['p50_ms']:.1f} ms, p99 {small['p99_ms']:.1f} ms, max {small['max_ms']:.1f} ms",
            ratio=ratio(STREAM_P99_TARGET_MS, small["p99_ms"]), target=1.0)
    ctx.row(f"Server RSS with {large['streams']:,} streams (ratio = 500 MB / RSS)",
            f"{large['rss_peak_mb']:.0f} MB; p99 {large['p99_ms']:.1f} ms at {large['writes'] / seconds:.0f} writes/s",
            ratio=ratio(STREAM_RSS_TARGET_MB, large["rss_peak_mb"]), target=1.0)
    return {"runs": runs, "realtime_runs": realtime_runs}


IDLE_STREAM_COUNTS = (1_000, 15_000)
IDLE_STREAM_COUNTS_QUICK = (500,)
IDLE_STREAM_TARGET_KB = 16.0


def _open_idle_streams(streams: list[socket.socket], port: int, count: int) -> None:
    """Opens `count` SSE streams on /feed in batches of 250, each read up to its first event
    and then left idle, appending each to `streams` as it is made: the caller closes them
    all, also when this fails partway."""
    request = f"GET /feed.json HTTP/1.1\r\nHost: {HOST}\r\nAccept: text/event-stream\r\n\r\n".encode()
    for start in range(0, count, 250):
        first = len(streams)
        for _ in range(min(250, count - start)):
            stream = socket.create_connection((HOST, port), timeout=30)
            streams.append(stream)
            stream.sendall(request)
        for stream in streams[first:]:
            received = b""
            while b"event: put" not in received:
                chunk = stream.recv(65536)
                if not chunk:
                    raise BenchmarkError(f"an idle stream ended before its first put: {received[:200]!r}")
                received += chunk


@section("idle-streams", "Memory per idle SSE stream (1,000 and 15,000 streams held, RSS before and after)")
def bench_idle_streams(ctx: Context) -> dict[str, Any]:
    """Opens N SSE streams on /feed from this process (blocking sockets, each read up to its
    first `put`), waits two seconds, and divides the growth of the server's resident memory
    by N. A warm-up of 50 streams comes first, so that what every server pays once
    (threads, pools) is not counted. Target: at most 16 KB per stream (issue 18)."""
    hearth = ctx.binary("hearth")
    counts = IDLE_STREAM_COUNTS_QUICK if ctx.quick else IDLE_STREAM_COUNTS
    runs = []
    for count in counts:
        server = HearthServer(hearth, ctx.workdir / f"idle-{count}", [
            "--fsync", "none", "--max-streams-per-client", str(2 * count + 100),
            "--max-connections", str(2 * count + 100)], rules='{"rules": {".read": true, ".write": true}}')
        with server:
            assert server.process is not None
            held: list[socket.socket] = []
            try:
                _open_idle_streams(held, server.port, 50)
                time.sleep(1)
                before = _rss_mb(server.process.pid)
                print(f"{count:,} idle SSE streams ...", flush=True)
                _open_idle_streams(held, server.port, count)
                time.sleep(2)
                after = _rss_mb(server.process.pid)
                server.ensure_alive(f"holding {count} streams")
            finally:
                for stream in held:
                    stream.close()
        per_stream_kb = (after - before) * 1024 / count
        runs.append({"streams": count, "rss_before_mb": before, "rss_after_mb": after,
                     "per_stream_kb": per_stream_kb})
        ctx.row(f"Server memory per idle SSE stream, {count:,} streams (ratio = 16 KB / per stream)",
                f"{per_stream_kb:.1f} KB ({before:.0f} MB -> {after:.0f} MB)",
                ratio=ratio(IDLE_STREAM_TARGET_KB, per_stream_kb), target=1.0)
    return {"runs": runs}


# --------------------------------------------------------------------------------------
# Section: security rules cost per write
# --------------------------------------------------------------------------------------

RULES_TARGET_US = 10.0


@section("rules", "Security rules: checks of one webhook write and one read (HearthBench rules)")
def bench_rules(ctx: Context) -> dict[str, Any]:
    """HearthBench rules compiles a typical 25-rule document (three $wildcards, newData.child
    and regex validations) and times the rules check of one POST /blessing.json into a
    namespace of 10,000 records, one read check, and the in-memory write with and without
    the check. Target: under 10 us per write."""
    bench = ctx.binary("HearthBench")
    seconds = 0.5 if ctx.quick else 2.0
    print(f"HearthBench rules ({seconds:g}s per measurement) ...", flush=True)
    figures = last_json_line(run_command([str(bench), "rules", "-", f"{seconds:g}"], timeout=600),
                             "HearthBench rules")
    write_us = figures["write_check_us"]
    print_table(["Rules", "Write check us", "Read check us", "Memory write us", "With rules us"],
                [[str(figures["rules"]), f"{write_us:.2f}", f"{figures['read_check_us']:.2f}",
                  f"{figures['memory_write_us']:.2f}", f"{figures['memory_write_with_rules_us']:.2f}"]],
                right={0, 1, 2, 3, 4})
    ctx.row(f"Rules check per write < {RULES_TARGET_US:g} us (ratio = {RULES_TARGET_US:g} us / time)",
            f"{write_us:.2f} us ({figures['rules']} rules)", ratio=ratio(RULES_TARGET_US, write_us), target=1.0)
    ctx.row("Rules check per read", f"{figures['read_check_us']:.2f} us")
    return figures


# --------------------------------------------------------------------------------------
# Section: snapshot write throughput
# --------------------------------------------------------------------------------------


@section("snapshot", "Snapshot write: serialise + zlib + checksum of the ~10 MB document's tree")
def bench_snapshot(ctx: Context) -> dict[str, Any]:
    """HearthBench snapshot encodes the tree of the json section's document as a snapshot
    file; best of 3 runs (1 with --quick), each a fresh process. Information only."""
    bench = ctx.binary("HearthBench")
    document = webhook_document(ctx, bench)
    size = document.stat().st_size
    runs = []
    for _ in range(1 if ctx.quick else 3):
        output = run_command([str(bench), "snapshot", str(document)], timeout=600)
        run = last_json_line(output, "HearthBench snapshot")
        if run.get("json_bytes") != size:
            ctx.fail(f"HearthBench snapshot read {run.get('json_bytes')} bytes, the file has {size}")
        runs.append(run)
    best = min(runs, key=lambda run: run["seconds"])
    compression = ratio(best["json_bytes"], best["snapshot_bytes"])
    print_table(["JSON bytes", "Snapshot bytes", "Compression", "Seconds", "MB/s"],
                [[f"{run['json_bytes']:,}", f"{run['snapshot_bytes']:,}",
                  f"{ratio(run['json_bytes'], run['snapshot_bytes']):.2f}x",
                  f"{run['seconds']:.3f}", f"{run['mb_per_second']:.1f}"] for run in runs],
                right={0, 1, 2, 3, 4})
    ctx.row("Snapshot write (serialise+zlib+CRC)",
            f"{best['mb_per_second']:.1f} MB/s ({best['json_bytes'] / 1e6:.1f} MB JSON "
            f"in {best['seconds']:.3f} s)")
    ctx.row("Snapshot compression JSON/snapshot",
            f"{best['json_bytes']:,} -> {best['snapshot_bytes']:,} bytes", ratio=compression)
    return {**best, "runs": runs, "compression_ratio": compression}


# --------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--release-dir", type=Path, default=REPO_ROOT / ".build" / "release",
                        help="directory holding the hearth and HearthBench release binaries")
    parser.add_argument("--quick", action="store_true",
                        help="short runs for a smoke test (figures are rough)")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections to run (default: all of {','.join(SECTIONS)})")
    parser.add_argument("--http-seconds", type=int, help="duration of each wrk run")
    parser.add_argument("--json-seconds", type=float, help="duration of each JSON measurement")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                        help="where to write the JSON results")
    arguments = parser.parse_args(argv)
    unknown = set(arguments.only.split(",")) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {','.join(sorted(unknown))}; known: {','.join(SECTIONS)}")
    return arguments


def run_section(ctx: Context, name: str) -> dict[str, Any]:
    """Runs one section; a crash is recorded as a failure instead of ending the run."""
    description, function = SECTIONS[name]
    ctx.current_section = name
    heading(f"{name}: {description}")
    started = time.monotonic()
    try:
        figures = function(ctx)
    except BenchmarkError as error:
        ctx.fail(str(error))
        figures = {"error": str(error)}
    except Exception as error:  # noqa: BLE001 - a broken section must not hide the others
        traceback.print_exc()
        ctx.fail(f"crashed: {type(error).__name__}: {error}")
        figures = {"error": f"{type(error).__name__}: {error}"}
    figures["elapsed_s"] = round(time.monotonic() - started, 1)
    return figures


def print_summary(ctx: Context, machine: dict[str, Any]) -> None:
    """The final table: one row per figure, with ratio, target and status."""
    heading("Summary")
    print(f"{machine['date']}  {machine['cpu_model']}  nproc={machine['nproc']}  "
          f"load {machine['load_average_start']} -> {machine.get('load_average_end')}  "
          f"git {machine['git']}" + ("  [QUICK]" if ctx.quick else ""))
    rows = [[row.section, row.name, row.result,
             "" if row.ratio is None else f"{row.ratio:.3f}",
             "" if row.target is None else f">= {row.target:.2f}", row.status]
            for row in ctx.rows]
    if rows:
        print_table(["Section", "Benchmark", "Result", "Ratio", "Target", "Status"], rows,
                    right={3})
    else:
        print("(no figures)")
    if ctx.failures:
        print(f"\n!!! {len(ctx.failures)} FAILURE(S):")
        for failure in ctx.failures:
            print(f"  - {failure}")


def write_results(path: Path, document: dict[str, Any]) -> None:
    """Writes the results file, creating its directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
    print(f"\nresults written to {path}")


def raise_on_sigterm() -> None:
    """Turns SIGTERM into SystemExit so cleanup (stopping the server) still runs."""
    def handler(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def main(argv: list[str] | None = None) -> int:
    """Runs the selected sections; 0 unless something broke."""
    arguments = parse_arguments(argv)
    raise_on_sigterm()
    machine = machine_info()
    selected = [name for name in SECTIONS if name in arguments.only.split(",")]
    with tempfile.TemporaryDirectory(prefix="hearth-bench-") as workdir:
        ctx = Context(
            release_dir=arguments.release_dir.resolve(),
            quick=arguments.quick,
            json_seconds=arguments.json_seconds or (1.0 if arguments.quick else 3.0),
            http_seconds=arguments.http_seconds or (3 if arguments.quick else 10),
            workdir=Path(workdir),
        )
        print(f"Hearth benchmarks: {', '.join(selected)}"
              f"{' (quick)' if ctx.quick else ''}; machine: {machine['cpu_model']}, "
              f"nproc={machine['nproc']}, load {machine['load_average_start']}")
        sections = {name: run_section(ctx, name) for name in selected}
    machine["load_average_end"] = load_average()
    print_summary(ctx, machine)
    write_results(arguments.output, {
        "schema": 1,
        "quick": ctx.quick,
        "settings": {"json_seconds": ctx.json_seconds, "http_seconds": ctx.http_seconds,
                     "release_dir": str(ctx.release_dir)},
        "machine": machine,
        "sections": sections,
        "summary": [{**asdict(row), "status": row.status} for row in ctx.rows],
        "failures": ctx.failures,
        "ok": not ctx.failures,
    })
    return 1 if ctx.failures else 0


if __name__ == "__main__":
    sys.exit(main())
