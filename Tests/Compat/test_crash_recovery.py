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
error, so at most one write per client is unknown per round. Some rounds also kill the
server again right after recovery, before any write, and check the data is unchanged.

SIGKILL leaves the page cache intact, so this test covers the server's ordering (no
acknowledgement before the record is in the log, atomic records, snapshot/MANIFEST/segment
switches, torn-tail recovery), not fsync itself: a power cut is not simulated.

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
# At least MIN_ROUNDS kills; up to MAX_ROUNDS (more if too few writes were acknowledged)
# while the time budget lasts, which keeps the test well under a minute on a busy 2-core
# machine (about 1.5 s per round when idle).
MIN_ROUNDS = 5
MAX_ROUNDS = 10
TIME_BUDGET_SECONDS = 30.0
KILL_AFTER_SECONDS = (0.3, 1.5)
# Enough records overall that the snapshot threshold passes several times.
MIN_ACKNOWLEDGED_WRITES = 1000
SEGMENT_BYTES = 8192
SNAPSHOT_AFTER_RECORDS = 200
CONNECT_TIMEOUT_SECONDS = 2.0
READ_TIMEOUT_SECONDS = 10.0
JOIN_TIMEOUT_SECONDS = 20.0
MAX_REPORTED_PROBLEMS = 25
# Chance, per round, of a second kill right after recovery, with no load in between.
IDLE_KILL_PROBABILITY = 0.3
# Operation mix: PUT, PATCH, POST, increment.
OPERATIONS = ("put", "patch", "post", "increment")
WEIGHTS = (3, 3, 2, 2)
ABSENT_BEFORE = "it was an in-flight write found absent after an earlier restart"


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
                value = {"s": tag, "n": n, "even": n % 2 == 0,
                         "pad": "x" * rng.randrange(0, 400)}
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
                method, url = "PUT", f"{base_url}/counter/{c}.json"
                body = {".sv": {"increment": 1}}
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
                        f"POST {url} answered {response.status_code} without a name: "
                        f"{response.text[:300]!r}")
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
        problems.append(f"{where}: expected an object, got {json_kind(value)} {describe(value)}")
        return {}
    return value


def describe(value) -> str:
    """A short repr of a written value (the PUT padding shown by its length)."""
    if isinstance(value, dict) and isinstance(value.get("pad"), str):
        value = {**value, "pad": f"<{len(value['pad'])} x>"}
    text = repr(value)
    return text if len(text) <= 160 else text[:157] + "..."


def fetch(base_url: str, path: str):
    """The value at `/path`, read with a fresh connection."""
    session = requests.Session()
    session.trust_env = False
    try:
        response = session.get(f"{base_url}/{path}.json", timeout=30)
    finally:
        session.close()
    assert response.status_code == 200, (
        f"GET /{path}.json after recovery: HTTP {response.status_code} {response.text[:300]}")
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
                problems.append(f"/w/{c}/{key}: acknowledged PUT lost; expected {describe(value)}")
            elif not same_json(present[key], value):
                problems.append(
                    f"/w/{c}/{key}: expected {describe(value)}, got {describe(present[key])}")
        for key, value in list(state.unknown_puts.items()):
            if key in present:
                if not same_json(present[key], value):
                    problems.append(f"/w/{c}/{key} (unknown PUT): expected {describe(value)} or "
                                    f"absent, got {describe(present[key])}")
                state.puts[key] = value
            else:
                state.absent_keys.add(("w", key))
            del state.unknown_puts[key]
        for key in present.keys() - state.puts.keys():
            why = ABSENT_BEFORE if ("w", key) in state.absent_keys else "never written"
            problems.append(f"/w/{c}/{key}: unexpected child ({why}): {describe(present[key])}")

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
                problems.append(f"/m p/{c}/{key}, q/{c}/{key}: unknown PATCH half-applied or "
                                f"wrong: expected both ({pv!r}, {qv!r}) or neither, got {got!r}")
            del state.unknown_patches[key]
        for side, children in (("p", p), ("q", q)):
            for key in children.keys() - state.patches.keys():
                why = ABSENT_BEFORE if ("m", key) in state.absent_keys else "never written"
                problems.append(
                    f"/m/{side}/{c}/{key}: unexpected child ({why}): {describe(children[key])}")

        # POSTs: every acknowledged push id with its body; unknown ones found by body.
        pushed = as_children(log.get(c), f"/log/{c}", problems)
        for name, body in state.posts.items():
            if name not in pushed:
                problems.append(f"/log/{c}/{name}: acknowledged POST lost; expected {body!r}")
            elif not same_json(pushed[name], body):
                problems.append(f"/log/{c}/{name}: expected {body!r}, got {describe(pushed[name])}")
        by_n = {}
        for name in pushed.keys() - state.posts.keys():
            body = pushed[name]
            n = body.get("n") if isinstance(body, dict) else None
            in_flight = state.unknown_posts.get(n) if isinstance(n, int) else None
            if in_flight is not None and same_json(body, in_flight) and n not in by_n:
                by_n[n] = name
            else:
                problems.append(f"/log/{c}/{name}: unexpected child {describe(body)} "
                                f"(not an acknowledged or in-flight POST of {c}, or a duplicate)")
        for n, body in list(state.unknown_posts.items()):
            if n in by_n:
                state.posts[by_n[n]] = body
                state.round_posts.append(by_n[n])
            del state.unknown_posts[n]
        # Push ids sort in creation order: this client's posts are sequential.
        ordered = sorted(name for name in pushed if name in state.posts)
        for earlier, later in zip(ordered, ordered[1:]):
            if state.posts[earlier]["n"] > state.posts[later]["n"]:
                problems.append(
                    f"/log/{c}: push ids out of creation order: {earlier} holds "
                    f"n={state.posts[earlier]['n']} but sorts before {later}, "
                    f"n={state.posts[later]['n']}")
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

    names = {state.name for state in clients}
    for where, children in (("/w", w), ("/m/p", p_all), ("/m/q", q_all), ("/log", log),
                            ("/counter", counters)):
        for name in children.keys() - names:
            problems.append(f"{where}/{name}: unexpected child {describe(children[name])}")
    return problems, largest_name


def log_text(log_dir: Path) -> str:
    """Every server log of the test, in start order, each under its file name."""
    return "\n".join(
        f"=== {path.name} ===\n{path.read_text(errors='replace')}"
        for path in sorted(log_dir.glob("*.log")))


def list_dir(directory: Path) -> list[str]:
    """The file names in `directory`, sorted; empty if it does not exist (yet)."""
    try:
        return sorted(os.listdir(directory))
    except OSError:
        return []


def segment_names(namespace_dir: Path) -> set[str]:
    """The log segments in the namespace directory now."""
    return {name for name in list_dir(namespace_dir) if name.endswith(".hlog")}


def temporary_files(namespace_dir: Path) -> set[tuple[str, int]]:
    """Leftover `*.tmp` files, with their modification times.

    One is left when a kill interrupts FileIO.writeAtomically (a snapshot, the MANIFEST or
    a new segment's header); the time tells a new leftover from an old one of the same name.
    """
    found = set()
    for name in list_dir(namespace_dir):
        if name.endswith(".tmp"):
            try:
                found.add((name, (namespace_dir / name).stat().st_mtime_ns))
            except OSError:
                pass
    return found


def sigkill(server) -> None:
    """Kills the server at once, as a crash would."""
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(timeout=10)


def start_clients(clients: list[ClientState], base_url: str, seed: int,
                  round_number: int) -> tuple[threading.Event, list[threading.Thread]]:
    """Starts one writer thread per client; the event stops them between requests."""
    stop = threading.Event()
    threads = []
    for index, state in enumerate(clients):
        state.acked_this_round = state.unknown_this_round = 0
        thread = threading.Thread(
            target=client_worker,
            args=(state, base_url, random.Random(f"{seed}-{round_number}-{index}"), stop),
            name=f"client-{state.name}", daemon=True)
        threads.append(thread)
        thread.start()
    return stop, threads


def test_acknowledged_writes_survive_sigkill_under_load(hearth_launcher, tmp_path):
    seed = int(os.environ.get("HEARTH_CRASH_SEED") or random.SystemRandom().randrange(2**32))
    rng = random.Random(seed)
    data_dir = tmp_path / "data"
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    namespace_dir = data_dir / "default"
    print(f"crash recovery seed {seed} (HEARTH_CRASH_SEED={seed} to replay); data dir {data_dir}")

    clients = [ClientState(f"c{i}") for i in range(CLIENTS)]
    # Production mode (no --emulator), with rules that let the anonymous clients in: this
    # test is about durability, not access.
    open_rules = tmp_path / "open.rules.json"
    open_rules.write_text('{"rules": {".read": true, ".write": true}}')
    flags = ["--fsync", "always", "--segment-bytes", str(SEGMENT_BYTES),
             "--snapshot-after-records", str(SNAPSHOT_AFTER_RECORDS), "--rules", str(open_rules)]
    started = time.monotonic()
    seen_segments: set[str] = set()
    leftover_tmp: set[tuple[str, int]] = set()
    interrupted_writes: list[str] = []
    max_name = ""
    kills = idle_kills = total_acked = 0
    server = None

    def launch(label: str):
        return hearth_launcher(data_dir, log_dir, emulator=False, extra_args=flags, log_name=label)

    def context() -> str:
        return (f"seed {seed}; data dir kept at {data_dir}; server logs in {log_dir}\n"
                f"--- server logs (tail) ---\n{log_text(log_dir)[-6000:]}")

    def fail_if(problems: list[str], when: str) -> None:
        if problems:
            shown = "\n".join(problems[:MAX_REPORTED_PROBLEMS])
            more = len(problems) - MAX_REPORTED_PROBLEMS
            raise AssertionError(
                f"{when}: {len(problems)} problem(s) in the recovered data:\n{shown}"
                + (f"\n... and {more} more" if more > 0 else "") + f"\n{context()}")

    try:
        server = launch("round-00")
        round_number = 0
        while True:
            round_number += 1
            elapsed = time.monotonic() - started
            if round_number > MIN_ROUNDS and (
                    elapsed > TIME_BUDGET_SECONDS
                    or (round_number > MAX_ROUNDS and total_acked >= MIN_ACKNOWLEDGED_WRITES)):
                break

            # Load, then SIGKILL while the clients are busy.
            stop, threads = start_clients(clients, server.base_url, seed, round_number)
            kill_after = rng.uniform(*KILL_AFTER_SECONDS)
            deadline = time.monotonic() + kill_after
            while time.monotonic() < deadline:
                seen_segments |= segment_names(namespace_dir)
                time.sleep(0.02)
            exit_code = server.process.poll()
            assert exit_code is None, (
                f"round {round_number}: hearth exited by itself with status {exit_code} "
                f"under load\n{context()}")
            sigkill(server)
            kills += 1
            stop.set()
            for thread in threads:
                thread.join(timeout=JOIN_TIMEOUT_SECONDS)
                assert not thread.is_alive(), (
                    f"{thread.name} still running {JOIN_TIMEOUT_SECONDS}s after the kill\n"
                    f"{context()}")
            seen_segments |= segment_names(namespace_dir)
            leftovers = temporary_files(namespace_dir)
            interrupted_writes += [f"round {round_number}: {name}"
                                   for name, _ in sorted(leftovers - leftover_tmp)]
            leftover_tmp |= leftovers
            acked = sum(state.acked_this_round for state in clients)
            unknown = sum(state.unknown_this_round for state in clients)
            total_acked += acked

            # Restart on the same data directory and check everything.
            server = launch(f"round-{round_number:02d}")
            problems, max_name = verify(server.base_url, clients, round_number, max_name)
            print(f"round {round_number}: killed after {kill_after:.2f}s, {acked} acknowledged, "
                  f"{unknown} unknown; files now {list_dir(namespace_dir)}")
            fail_if(problems, f"round {round_number} (after SIGKILL #{kills}, "
                              f"at {kill_after:.2f}s of load)")

            # Sometimes kill the freshly recovered server before any new write and recover
            # again: recovering a recovered directory (a truncated tail, a replayed log)
            # must give exactly the same data.
            if rng.random() < IDLE_KILL_PROBABILITY:
                sigkill(server)
                kills += 1
                idle_kills += 1
                server = launch(f"round-{round_number:02d}-idle")
                problems, max_name = verify(server.base_url, clients, round_number, max_name)
                fail_if(problems, f"round {round_number} (SIGKILL #{kills}, right after "
                                  f"recovery, no load in between)")

        # The run must really have covered snapshots and segment rotation.
        logs = log_text(log_dir)
        snapshots = sorted(path.name for path in namespace_dir.glob("snap-*.hsnap"))
        assert snapshots or "snapshot written" in logs, (
            f"no snapshot was taken during the test (no snap-*.hsnap in {namespace_dir} and "
            f"no 'snapshot written' in the server logs) after {total_acked} acknowledged "
            f"writes with --snapshot-after-records {SNAPSHOT_AFTER_RECORDS}; the test did not "
            f"cover snapshots\n{context()}")
        assert len(seen_segments) > 1 or any(name != "log-00000000000000000001.hlog"
                                             for name in seen_segments), (
            f"no log segment rotation seen (segments seen: {sorted(seen_segments)}) with "
            f"--segment-bytes {SEGMENT_BYTES}; the test did not cover rotation\n{context()}")
        print(f"crash recovery: seed {seed}, {kills} kills ({idle_kills} right after "
              f"recovery), {total_acked} acknowledged writes, {len(seen_segments)} segments "
              f"seen, snapshots now {snapshots}, {logs.count('snapshot written')} 'snapshot "
              f"written' log lines, kills during an atomic file write: "
              f"{interrupted_writes or 'none'}, {time.monotonic() - started:.1f}s")
    finally:
        if server is not None and server.process.poll() is None:
            sigkill(server)
