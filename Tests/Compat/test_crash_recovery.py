"""Crash recovery under load: SIGKILL a real `hearth serve` at random moments and check
that every acknowledged write survives the restart and that no write is half-applied.

One test, several rounds. Each round starts the server on the same data directory, runs
8 client threads against it (PUT, multi-path PATCH, POST and server-increment writes),
kills it with SIGKILL after a random 0.3-1.5 s, restarts it and checks the recovered data
through the REST API. Tiny log segments and a low snapshot threshold make segment
rotation and background snapshots happen during the load, so some kills land while a
snapshot or a rotation is under way.

A write is *acknowledged* when it got a 2xx answer; it must then be present after every
later restart. A write that was in flight when the server died is *unknown*: it may be
present or absent, but never half-applied, and whichever the first restart shows must
hold from then on. Each client thread sends one request at a time and stops at its first
error, so at most one write per client is unknown per round.

The random generator is seeded; the seed is printed (set HEARTH_CRASH_SEED to replay the
same choices; thread timing still varies). On failure the data directory and the server
logs are left in pytest's temporary directory, and the message names them.
"""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

CLIENTS = 8
MIN_ROUNDS = 6
MAX_ROUNDS = 12
# Keep the whole test well under a minute on a busy 2-core machine.
TIME_BUDGET_SECONDS = 40.0
KILL_AFTER_SECONDS = (0.3, 1.5)
# Enough records overall that the snapshot threshold passes several times.
MIN_ACKNOWLEDGED_WRITES = 1000
SEGMENT_BYTES = 8192
SNAPSHOT_AFTER_RECORDS = 200
CONNECT_TIMEOUT_SECONDS = 2.0
READ_TIMEOUT_SECONDS = 10.0
JOIN_TIMEOUT_SECONDS = 20.0
MAX_REPORTED_PROBLEMS = 25
# Operation mix: PUT, PATCH, POST, increment.
OPERATIONS = ("put", "patch", "post", "increment")
WEIGHTS = (3, 3, 2, 2)


@dataclass
class ClientState:
    """What one client wrote, and what the server must therefore hold."""

    name: str
    next_n: int = 0
    # Writes whose presence is settled: acknowledged, or unknown and seen after a restart.
    puts: dict = field(default_factory=dict)  # key -> value
    patches: dict = field(default_factory=dict)  # key -> (p value, q value)
    posts: dict = field(default_factory=dict)  # push id -> body
    # Writes in flight when the server died (or refused); settled at the next check.
    unknown_puts: dict = field(default_factory=dict)
    unknown_patches: dict = field(default_factory=dict)
    unknown_posts: dict = field(default_factory=dict)  # n -> body
    # Keys of unknown writes that a restart showed absent: they must stay absent.
    absent_keys: set = field(default_factory=set)
    # Counter: the value seen at the last check, then what happened since.
    counter_base: int = 0
    counter_acked: int = 0
    counter_unknown: int = 0
    counter_last_ack_value: int | None = None
    # Push ids acknowledged in the current round.
    round_posts: list = field(default_factory=list)
    acked_this_round: int = 0
    unknown_this_round: int = 0
    unexpected: list = field(default_factory=list)


def key_for(n: int) -> str:
    """A child key that is never all digits (Firebase would render those as an array)."""
    return f"k{n:06d}"


def client_worker(state: ClientState, base_url: str, rng: random.Random,
                  stop: threading.Event) -> None:
    """Sends writes one at a time until `stop` is set or a request fails."""
    session = requests.Session()
    session.trust_env = False
    timeout = (CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS)
    c = state.name
    try:
        while not stop.is_set():
            n = state.next_n
            state.next_n += 1
            key = key_for(n)
            tag = f"{c}-{n}-{rng.getrandbits(48):012x}"
            operation = rng.choices(OPERATIONS, WEIGHTS)[0]
            if operation == "put":
                value = {"s": tag, "n": n, "even": n % 2 == 0, "pad": "x" * rng.randrange(0, 400)}
                state.unknown_puts[key] = value
                method, url, body = "PUT", f"{base_url}/w/{c}/{key}.json", value
            elif operation == "patch":
                values = ("P" + tag, "Q" + tag)
                state.unknown_patches[key] = values
                method, url = "PATCH", f"{base_url}/m.json"
                body = {f"p/{c}/{key}": values[0], f"q/{c}/{key}": values[1]}
            elif operation == "post":
                body = {"client": c, "n": n}
                state.unknown_posts[n] = body
                method, url = "POST", f"{base_url}/log/{c}.json"
            else:
                state.counter_unknown += 1
                method, url, body = "PUT", f"{base_url}/counter/{c}.json", {".sv": {"increment": 1}}
            try:
                response = session.request(method, url, data=json.dumps(body), timeout=timeout)
            except requests.RequestException:
                # In flight when the server died (or too slow): outcome unknown. Stop, so
                # this client never has two writes of unknown order in flight.
                state.unknown_this_round += 1
                return
            if not 200 <= response.status_code < 300:
                state.unexpected.append(
                    f"{method} {url} {body!r}: HTTP {response.status_code} {response.text[:300]!r}")
                state.unknown_this_round += 1
                return
            # Acknowledged: move it from unknown to settled.
            if operation == "put":
                state.puts[key] = state.unknown_puts.pop(key)
            elif operation == "patch":
                state.patches[key] = state.unknown_patches.pop(key)
            elif operation == "post":
                try:
                    name = response.json()["name"]
                except (ValueError, KeyError, TypeError):
                    state.unexpected.append(
                        f"POST {url} answered {response.status_code} without a name: {response.text[:300]!r}")
                    state.unknown_this_round += 1
                    return
                state.posts[name] = state.unknown_posts.pop(n)
                state.round_posts.append(name)
            else:
                state.counter_unknown -= 1
                state.counter_acked += 1
                try:
                    state.counter_last_ack_value = response.json()
                except ValueError:
                    state.unexpected.append(f"increment answered {response.text[:300]!r}")
            state.acked_this_round += 1
    finally:
        session.close()


def json_kind(value) -> str:
    """The JSON type of a decoded value (bool is not a number)."""
    if isinstance(value, bool):
        return "bool"
    return type(value).__name__


def same_json(actual, expected) -> bool:
    """`actual == expected` with identical JSON types all the way down."""
    if json_kind(actual) != json_kind(expected):
        return False
    if isinstance(expected, dict):
        return sorted(actual) == sorted(expected) and all(
            same_json(actual[k], v) for k, v in expected.items())
    if isinstance(expected, list):
        return len(actual) == len(expected) and all(map(same_json, actual, expected))
    return actual == expected


def as_children(value, where: str, problems: list) -> dict:
    """The children of a location read back as an object (empty when absent)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(f"{where}: expected an object, got {json_kind(value)} {value!r:.200}")
        return {}
    return value


def fetch(base_url: str, path: str):
    session = requests.Session()
    session.trust_env = False
    try:
        response = session.get(f"{base_url}/{path}.json", timeout=30)
    finally:
        session.close()
    assert response.status_code == 200, f"GET /{path}.json: HTTP {response.status_code} {response.text[:300]}"
    return response.json()


def verify(base_url: str, clients: list[ClientState], round_number: int,
           max_name_before: str) -> tuple[list[str], str]:
    """Checks the recovered data against what the clients know, then settles unknowns.

    Returns the problems found and the largest push id now present.
    """
    problems: list[str] = []
    w = as_children(fetch(base_url, "w"), "/w", problems)
    m = as_children(fetch(base_url, "m"), "/m", problems)
    log = as_children(fetch(base_url, "log"), "/log", problems)
    counters = as_children(fetch(base_url, "counter"), "/counter", problems)
    p_all = as_children(m.get("p"), "/m/p", problems)
    q_all = as_children(m.get("q"), "/m/q", problems)
    largest_name = max_name_before

    for state in clients:
        c = state.name
        # PUTs: acknowledged ones exact; unknown ones either exact or absent.
        present = as_children(w.get(c), f"/w/{c}", problems)
        for key, value in state.puts.items():
            if key not in present:
                problems.append(f"/w/{c}/{key}: acknowledged PUT lost; expected {value!r:.120}")
            elif not same_json(present[key], value):
                problems.append(f"/w/{c}/{key}: expected {value!r:.120}, got {present[key]!r:.120}")
        for key, value in list(state.unknown_puts.items()):
            if key in present:
                if not same_json(present[key], value):
                    problems.append(f"/w/{c}/{key} (unknown PUT): expected {value!r:.120} or absent, "
                                    f"got {present[key]!r:.120}")
                state.puts[key] = value
            else:
                state.absent_keys.add(("w", key))
            del state.unknown_puts[key]
        for key in present.keys() - state.puts.keys():
            why = "was absent after an earlier restart" if ("w", key) in state.absent_keys else "never written"
            problems.append(f"/w/{c}/{key}: unexpected child ({why}): {present[key]!r:.120}")

        # PATCHes: both keys or neither (always); both when acknowledged.
        p = as_children(p_all.get(c), f"/m/p/{c}", problems)
        q = as_children(q_all.get(c), f"/m/q/{c}", problems)
        for key, (pv, qv) in state.patches.items():
            got = (p.get(key), q.get(key))
            if got != (pv, qv):
                problems.append(f"/m p/{c}/{key}, q/{c}/{key}: acknowledged PATCH expected "
                                f"({pv!r}, {qv!r}), got {got!r}")
        for key, (pv, qv) in list(state.unknown_patches.items()):
            got = (p.get(key), q.get(key))
            if got == (pv, qv):
                state.patches[key] = (pv, qv)
            elif got == (None, None):
                state.absent_keys.add(("m", key))
            else:
                problems.append(f"/m p/{c}/{key}, q/{c}/{key}: unknown PATCH half-applied or wrong: "
                                f"expected both ({pv!r}, {qv!r}) or neither, got {got!r}")
            del state.unknown_patches[key]
        for side, children in (("p", p), ("q", q)):
            for key in children.keys() - state.patches.keys():
                why = "was absent after an earlier restart" if ("m", key) in state.absent_keys else "never written"
                problems.append(f"/m/{side}/{c}/{key}: unexpected child ({why}): {children[key]!r:.120}")

        # POSTs: every acknowledged push id with its body; unknown ones found by body.
        pushed = as_children(log.get(c), f"/log/{c}", problems)
        for name, body in state.posts.items():
            if name not in pushed:
                problems.append(f"/log/{c}/{name}: acknowledged POST lost; expected {body!r}")
            elif not same_json(pushed[name], body):
                problems.append(f"/log/{c}/{name}: expected {body!r}, got {pushed[name]!r:.120}")
        by_n = {}
        for name in pushed.keys() - state.posts.keys():
            body = pushed[name]
            n = body.get("n") if isinstance(body, dict) else None
            if isinstance(n, int) and n in state.unknown_posts and same_json(body, state.unknown_posts[n]) \
                    and n not in by_n:
                by_n[n] = name
            else:
                problems.append(f"/log/{c}/{name}: unexpected child {body!r:.120} "
                                f"(not an acknowledged or in-flight POST of {c}, or a duplicate)")
        for n, body in list(state.unknown_posts.items()):
            if n in by_n:
                state.posts[by_n[n]] = body
                state.round_posts.append(by_n[n])
            del state.unknown_posts[n]
        # Push ids sort in creation order: this client's posts are sequential.
        ordered = sorted(name for name in pushed if name in state.posts)
        ns = [state.posts[name]["n"] for name in ordered]
        if ns != sorted(ns):
            problems.append(f"/log/{c}: push ids out of creation order: keys sorted {ordered} "
                            f"hold n = {ns}")
        # Push ids created since the last restart sort after every earlier one.
        for name in state.round_posts:
            if name <= max_name_before:
                problems.append(f"/log/{c}/{name} (round {round_number}): push id is not after the "
                                f"largest push id before the restart, {max_name_before}")
        state.round_posts.clear()
        if ordered:
            largest_name = max(largest_name, ordered[-1])

        # Counter: at least every acknowledged increment, at most those plus in-flight ones.
        value = counters.get(c, 0)
        low = state.counter_base + state.counter_acked
        high = low + state.counter_unknown
        if json_kind(value) != "int":
            problems.append(f"/counter/{c}: expected an integer in [{low}, {high}], got {value!r}")
        elif not low <= value <= high:
            problems.append(f"/counter/{c}: expected {low}..{high} (base {state.counter_base} + "
                            f"{state.counter_acked} acknowledged + up to {state.counter_unknown} "
                            f"in flight), got {value}")
        elif state.counter_last_ack_value is not None and value < state.counter_last_ack_value:
            problems.append(f"/counter/{c}: last acknowledged increment answered "
                            f"{state.counter_last_ack_value}, recovered {value}")
        else:
            state.counter_base = value
            state.counter_acked = state.counter_unknown = 0
            state.counter_last_ack_value = None

        problems.extend(f"{c}: unexpected answer: {text}" for text in state.unexpected)
        state.unexpected.clear()

    for name in counters.keys() - {s.name for s in clients}:
        problems.append(f"/counter/{name}: unexpected child {counters[name]!r}")
    return problems, largest_name


def log_text(log_dir: Path) -> str:
    return "\n".join(
        f"=== {path.name} ===\n{path.read_text(errors='replace')}"
        for path in sorted(log_dir.glob("*.log")))


def segment_names(namespace_dir: Path) -> set[str]:
    try:
        return {name for name in os.listdir(namespace_dir) if name.endswith(".hlog")}
    except OSError:
        return set()


def test_acknowledged_writes_survive_sigkill_under_load(hearth_launcher, tmp_path):
    seed = int(os.environ.get("HEARTH_CRASH_SEED") or random.SystemRandom().randrange(2**32))
    rng = random.Random(seed)
    data_dir = tmp_path / "data"
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    namespace_dir = data_dir / "default"
    print(f"crash recovery seed {seed} (HEARTH_CRASH_SEED={seed} to replay); data dir {data_dir}")

    clients = [ClientState(f"c{i}") for i in range(CLIENTS)]
    server_args = dict(
        emulator=False,
        extra_args=["--fsync", "always", "--segment-bytes", str(SEGMENT_BYTES),
                    "--snapshot-after-records", str(SNAPSHOT_AFTER_RECORDS)],
    )
    started = time.monotonic()
    seen_segments: set[str] = set()
    max_name = ""
    kills = 0
    total_acked = 0
    server = None

    def context() -> str:
        return (f"seed {seed}; data dir kept at {data_dir}; server logs in {log_dir}\n"
                f"--- server logs (tail) ---\n{log_text(log_dir)[-6000:]}")

    try:
        server = hearth_launcher(data_dir, log_dir, log_name="round-00", **server_args)
        round_number = 0
        while True:
            round_number += 1
            elapsed = time.monotonic() - started
            if round_number > MIN_ROUNDS and (
                    total_acked >= MIN_ACKNOWLEDGED_WRITES or elapsed > TIME_BUDGET_SECONDS
                    or round_number > MAX_ROUNDS):
                break
            # Load, then SIGKILL while the clients are busy.
            stop = threading.Event()
            threads = []
            for index, state in enumerate(clients):
                state.acked_this_round = state.unknown_this_round = 0
                thread_rng = random.Random(f"{seed}-{round_number}-{index}")
                thread = threading.Thread(
                    target=client_worker, args=(state, server.base_url, thread_rng, stop),
                    name=f"client-{state.name}", daemon=True)
                threads.append(thread)
                thread.start()
            kill_after = rng.uniform(*KILL_AFTER_SECONDS)
            deadline = time.monotonic() + kill_after
            while time.monotonic() < deadline:
                seen_segments |= segment_names(namespace_dir)
                time.sleep(0.02)
            exit_code = server.process.poll()
            assert exit_code is None, (
                f"round {round_number}: hearth exited by itself with status {exit_code} under load\n"
                f"{context()}")
            server.process.send_signal(signal.SIGKILL)
            server.process.wait(timeout=10)
            kills += 1
            stop.set()
            for thread in threads:
                thread.join(timeout=JOIN_TIMEOUT_SECONDS)
                assert not thread.is_alive(), f"{thread.name} still running after the kill ({context()})"
            seen_segments |= segment_names(namespace_dir)
            acked = sum(s.acked_this_round for s in clients)
            unknown = sum(s.unknown_this_round for s in clients)
            total_acked += acked

            # Restart on the same data directory and check everything.
            server = hearth_launcher(data_dir, log_dir, log_name=f"round-{round_number:02d}", **server_args)
            problems, max_name = verify(server.base_url, clients, round_number, max_name)
            print(f"round {round_number}: killed after {kill_after:.2f}s, {acked} acknowledged, "
                  f"{unknown} unknown; files now {sorted(os.listdir(namespace_dir))}")
            if problems:
                shown = "\n".join(problems[:MAX_REPORTED_PROBLEMS])
                more = len(problems) - MAX_REPORTED_PROBLEMS
                raise AssertionError(
                    f"round {round_number} (after SIGKILL #{kills}, at {kill_after:.2f}s of load): "
                    f"{len(problems)} problem(s) in the recovered data:\n{shown}"
                    + (f"\n... and {more} more" if more > 0 else "") + f"\n{context()}")

        # The run must really have covered snapshots and segment rotation.
        logs = log_text(log_dir)
        snapshots = sorted(namespace_dir.glob("snap-*.hsnap"))
        assert snapshots or "snapshot written" in logs, (
            f"no snapshot was taken during the test (no snap-*.hsnap in {namespace_dir} and no "
            f"'snapshot written' in the server logs) after {total_acked} acknowledged writes with "
            f"--snapshot-after-records {SNAPSHOT_AFTER_RECORDS}; the test did not cover snapshots\n"
            f"{context()}")
        first_sequences = sorted(int(name[4:-5]) for name in seen_segments)
        assert len(seen_segments) > 1 or any(first > 1 for first in first_sequences), (
            f"no log segment rotation seen (segments seen: {sorted(seen_segments)}) with "
            f"--segment-bytes {SEGMENT_BYTES}; the test did not cover rotation\n{context()}")
        print(f"crash recovery: seed {seed}, {kills} kills, {total_acked} acknowledged writes, "
              f"{len(seen_segments)} segments seen, snapshots {[p.name for p in snapshots]}, "
              f"{logs.count('snapshot written')} 'snapshot written' log lines, "
              f"{time.monotonic() - started:.1f}s")
    finally:
        if server is not None and server.process.poll() is None:
            server.process.kill()
            server.process.wait(timeout=10)
