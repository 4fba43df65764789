"""Several writing Hearth nodes on one PostgreSQL database (`--storage postgres://…` on each):
any node takes any request; a write on one is read and streamed on the others with the same
event ids; writes racing from two nodes stay linear (conditional writes and transactions
give exact counts); a node killed under load loses no acknowledged write and its streams
resume on another node without a gap; a node paused (SIGSTOP) while others write commits
nothing on the state it had; PostgreSQL stopped and started under load.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
import uuid

import pytest
import requests

from compat_helpers import wait_for
from test_streaming import SSEStream
from wire_client import WireClient, node_hash

NS = "plant"
OWNER = {"Authorization": "Bearer owner"}


@pytest.fixture
def url(postgres):
    name = "c" + uuid.uuid4().hex[:12]
    return postgres.create_database(name)


def start_node(hearth_launcher, tmp_path, url: str, index: int, *extra: str, run: int = 0):
    return hearth_launcher(tmp_path / f"node{index}", tmp_path, extra_args=["--storage", url, *extra],
                           log_name=f"node{index}-{run}")


def nodes(hearth_launcher, tmp_path, url: str, count: int = 3, *extra: str):
    return [start_node(hearth_launcher, tmp_path, url, i, *extra) for i in range(count)]


def get(node, path: str, **params):
    return requests.get(f"{node.base_url}/{path}.json", params={"ns": NS, **params}, timeout=10)


def put(node, path: str, value, headers: dict | None = None):
    return requests.put(f"{node.base_url}/{path}.json", params={"ns": NS}, json=value, headers=headers, timeout=10)


def log_sequences(postgres, url: str) -> list[int]:
    name = url.rsplit("/", 1)[1]
    return [int(row[0]) for row in postgres.sql(name, f"SELECT sequence FROM hearth_log WHERE namespace = '{NS}' ORDER BY 1")]


def test_writes_on_one_node_are_read_and_streamed_on_the_others_with_the_same_event_ids(hearth_launcher, tmp_path, url):
    a, b, c = nodes(hearth_launcher, tmp_path, url)
    streams = [SSEStream(f"{node.base_url}/feed.json", params={"ns": NS}, label=f"on {i}") for i, node in enumerate((a, b, c))]
    try:
        for stream in streams:
            stream.expect("put", "/", None)
        for i, writer in enumerate((a, b, c, a)):
            assert put(writer, f"feed/k{i}", i).status_code == 200
            ids = {stream.expect("put", f"/k{i}", i).id for stream in streams}
            assert len(ids) == 1, f"one event id on every node: {ids}"
    finally:
        for stream in streams:
            stream.close()
    expected = {f"k{i}": i for i in range(4)}
    for node in (a, b, c):
        assert get(node, "feed").json() == expected
    # Rules stored on one node are in force on the others.
    closed = '{"rules": {".read": false, ".write": true}}'
    assert requests.put(f"{b.base_url}/.settings/rules.json", params={"ns": NS}, data=closed, headers=OWNER,
                        timeout=10).status_code == 200
    assert wait_for(lambda: get(a, "feed").status_code == 401 and get(c, "feed").status_code == 401)
    # A namespace created on one node appears on the others.
    assert requests.put(f"{c.base_url}/x.json", params={"ns": "later"}, json=1, timeout=10).status_code == 200
    assert wait_for(lambda: requests.get(f"{a.base_url}/x.json", params={"ns": "later"}, timeout=10).json() == 1)


def test_conditional_writes_and_transactions_racing_from_two_nodes_give_exact_counts(hearth_launcher, tmp_path, url, postgres):
    a, b, _ = nodes(hearth_launcher, tmp_path, url)
    assert put(a, "counter", 0).status_code == 200
    assert put(a, "tx", 0).status_code == 200
    # B serves reads from what it has followed: wait until it has both (see "What a client sees").
    assert wait_for(lambda: get(b, "counter").json() == 0 and get(b, "tx").json() == 0)
    per_client = 60
    failures: list[str] = []

    def etag_increments(node) -> None:
        done = 0
        while done < per_client:
            current = requests.get(f"{node.base_url}/counter.json", params={"ns": NS}, headers={"X-Firebase-ETag": "true"},
                                   timeout=10)
            answer = put(node, "counter", current.json() + 1, headers={"if-match": current.headers["ETag"]})
            if answer.status_code == 200:
                done += 1
            elif answer.status_code != 412:
                failures.append(f"{answer.status_code} {answer.text}")
                return

    def transactions(node) -> None:
        client = WireClient(node.port, NS)
        try:
            done = 0
            value = get(node, "tx").json()
            while done < per_client:
                reply = client.put("/tx", value + 1, hash=node_hash(value))
                if reply["s"] == "ok":
                    done += 1
                    value += 1
                elif reply["s"] == "datastale":
                    # The SDKs take the new value from their listen; a read does here.
                    value = get(node, "tx").json()
                else:
                    failures.append(f"transaction: {reply}")
                    return
        finally:
            client.close()

    def reporting(work, node) -> None:
        try:
            work(node)
        except Exception as error:  # a thread's exception would otherwise only be printed
            failures.append(f"{work.__name__} on {node.port}: {error!r}")

    threads = [threading.Thread(target=reporting, args=(work, node)) for node in (a, b)
               for work in (etag_increments, transactions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures, failures
    assert get(a, "counter").json() == 2 * per_client
    assert get(a, "tx").json() == 2 * per_client
    assert wait_for(lambda: get(b, "counter").json() == 2 * per_client and get(b, "tx").json() == 2 * per_client)
    sequences = log_sequences(postgres, url)
    assert sequences == list(range(sequences[0], sequences[0] + len(sequences))), "one linear log"


def test_kill_9_of_the_writing_node_under_8_writers_20_times_loses_nothing_and_streams_resume_without_gaps(
        hearth_launcher, tmp_path, url, postgres):
    history = ("--stream-history", "1000000")
    cluster = nodes(hearth_launcher, tmp_path, url, 3, *history)
    runs = [0, 0, 0]
    target = [0]
    acknowledged: list[str] = []
    stop = threading.Event()

    def writer(index: int) -> None:
        session = requests.Session()
        n = 0
        while not stop.is_set():
            node = cluster[target[0]]
            n += 1
            try:
                response = session.post(f"{node.base_url}/log.json", params={"ns": NS}, json={"w": index, "n": n}, timeout=5)
            except requests.RequestException:
                session = requests.Session()
                time.sleep(0.02)
                continue
            if response.status_code == 200:
                acknowledged.append(response.json()["name"])
            else:
                time.sleep(0.02)

    # A stream that follows the writes, from the node being written to; when that node dies
    # it resumes on the next one from its last event id, as a client behind a balancer does.
    events: list[tuple[int, str, dict]] = []
    stop_stream = threading.Event()

    def follow_stream() -> None:
        last = None
        while not stop_stream.is_set():
            headers = {"Last-Event-ID": last} if last else None
            try:
                stream = SSEStream(f"{cluster[target[0]].base_url}/log.json", params={"ns": NS}, headers=headers, label="log")
            except (requests.RequestException, AssertionError):
                time.sleep(0.05)
                continue
            try:
                while not stop_stream.is_set():
                    try:
                        event = stream.next_item(timeout=0.2)
                    except AssertionError:  # nothing within the timeout
                        continue
                    if not hasattr(event, "event"):  # the stream ended: the node died
                        break
                    if event.event in ("put", "patch"):
                        events.append((int(event.id), event.event, event.json))
                        last = event.id
            except Exception:  # the node died: resume elsewhere
                pass
            finally:
                stream.close()

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    streamer = threading.Thread(target=follow_stream)
    streamer.start()
    takeovers = []
    try:
        for cycle in range(20):
            time.sleep(0.5)
            victim = target[0]
            before = len(acknowledged)
            cluster[victim].process.kill()
            cluster[victim].process.wait(timeout=10)
            killed_at = time.monotonic()
            target[0] = (victim + 1) % 3
            assert wait_for(lambda: len(acknowledged) > before + 8, seconds=10), f"cycle {cycle}: writes resume"
            takeovers.append(time.monotonic() - killed_at)
            runs[victim] += 1
            cluster[victim] = start_node(hearth_launcher, tmp_path, url, victim, *history, run=runs[victim])
    finally:
        stop.set()
        for thread in threads:
            thread.join(15)
    time.sleep(1)
    stop_stream.set()
    streamer.join(15)
    assert len(acknowledged) > 500
    assert max(takeovers) < 5, f"writes resumed on another node within {max(takeovers):.2f} s"
    for node in cluster:
        assert wait_for(lambda: len(get(node, "log", shallow="true").json() or {}) >= len(set(acknowledged)))
    # A node serves what it has followed (see CLUSTER.md): the trees agree once every node
    # has read the last commit, which may be a write whose answer the kill lost.
    assert wait_for(lambda: len({json.dumps(get(node, "log").json(), sort_keys=True) for node in cluster}) == 1), \
        "every node holds the same tree"
    stored = get(cluster[0], "log").json()
    missing = [name for name in acknowledged if name not in stored]
    assert not missing, f"{len(missing)} acknowledged writes lost"
    pairs = [(record["w"], record["n"]) for record in stored.values()]
    assert len(pairs) == len(set(pairs)), "no write was applied twice"
    sequences = log_sequences(postgres, url)
    assert sequences == list(range(sequences[0], sequences[0] + len(sequences))), "one linear log"
    # The stream saw every change once, in order, across its resumptions.
    ids = [event[0] for event in events]
    assert ids == list(range(ids[0], ids[0] + len(ids))), "the resumed streams have no gap and no repeat"
    seen = set()
    for _, kind, body in events:
        if kind == "put" and body["path"] == "/":
            seen |= set(body["data"] or {})
        elif kind == "put":
            seen.add(body["path"].strip("/"))
        else:
            seen |= set(body["data"])
    assert set(acknowledged) <= seen, "every acknowledged write reached the stream"


def test_a_node_paused_while_others_write_commits_nothing_on_the_state_it_had(hearth_launcher, tmp_path, url, postgres):
    a, b, _ = nodes(hearth_launcher, tmp_path, url)
    # b writes first, so b holds the namespace's write lease.
    assert put(b, "counter", 1).status_code == 200
    assert wait_for(lambda: get(a, "counter").json() == 1)
    etag = requests.get(f"{a.base_url}/counter.json", params={"ns": NS}, headers={"X-Firebase-ETag": "true"},
                        timeout=10).headers["ETag"]
    answers: dict[str, requests.Response] = {}
    # Written where they arrive (marked as forwarded already), as realtime writes are, or as
    # writes are when a believes it holds the lease (paused past its expiry, say).
    here = {"X-Hearth-Forwarded": "1"}
    a.process.send_signal(signal.SIGSTOP)
    try:
        # Sent while a is paused: it reads them when it resumes, judged against what it had.
        conditional = threading.Thread(target=lambda: answers.setdefault(
            "conditional", put(a, "counter", 100, headers={"if-match": etag, **here})))
        plain = threading.Thread(target=lambda: answers.setdefault("plain", put(a, "from_a", "late", headers=here)))
        conditional.start()
        plain.start()
        time.sleep(0.3)
        for i in range(2, 12):
            assert put(b, "counter", i).status_code == 200
        time.sleep(1.5)
    finally:
        a.process.send_signal(signal.SIGCONT)
    conditional.join(30)
    plain.join(30)
    assert answers["conditional"].status_code == 412, answers["conditional"].text
    assert answers["conditional"].json() == 11, "the 412 carries the current value"
    assert answers["plain"].status_code == 200
    for node in (a, b):
        assert wait_for(lambda: get(node, "").json() == {"counter": 11, "from_a": "late"})
    sequences = log_sequences(postgres, url)
    assert sequences == list(range(1, 13)), "one linear log: nothing committed twice or on the old state"


def forwarded_writes(node) -> int:
    metrics = requests.get(f"{node.base_url}/.metrics", headers=OWNER, timeout=10).text
    for line in metrics.splitlines():
        if line.startswith("hearth_forwarded_writes_total"):
            return int(float(line.split()[-1]))
    return 0


def test_rest_writes_go_to_the_node_holding_the_namespaces_write_lease(hearth_launcher, tmp_path, url, postgres):
    database = url.rsplit("/", 1)[1]
    a, b, c = nodes(hearth_launcher, tmp_path, url)
    assert put(a, "x", 1).status_code == 200
    assert postgres.sql(database, f"SELECT address FROM hearth_leases WHERE namespace = '{NS}'") == [[a.base_url]]
    names = []
    for node in (b, c, b, c):
        answer = requests.post(f"{node.base_url}/items.json", params={"ns": NS}, json={"via": node.port}, timeout=10)
        assert answer.status_code == 200, answer.text
        names.append(answer.json()["name"])
    assert forwarded_writes(b) == 2 and forwarded_writes(c) == 2 and forwarded_writes(a) == 0
    assert sorted(get(a, "items").json()) == sorted(names), "the holder made them"
    # The client gets the holder's answer, whatever it is.
    refused = put(b, "x", 2, headers={"if-match": "stale"})
    assert refused.status_code == 412 and refused.json() == 1
    # A holder that stops releases its leases: the next writer takes the namespace.
    a.process.terminate()
    a.process.wait(timeout=15)
    assert put(b, "x", 3).status_code == 200
    assert postgres.sql(database, f"SELECT address FROM hearth_leases WHERE namespace = '{NS}'") == [[b.base_url]]
    # A holder that dies: writes on another node are made there at once.
    b.process.kill()
    b.process.wait(timeout=10)
    started = time.monotonic()
    assert put(c, "x", 4).status_code == 200
    assert time.monotonic() - started < 2
    assert get(c, "x").json() == 4


def test_the_on_disconnect_writes_of_a_node_killed_are_made_by_another_node(hearth_launcher, tmp_path, url, postgres):
    database = url.rsplit("/", 1)[1]
    a, b, _ = nodes(hearth_launcher, tmp_path, url)
    client = WireClient(a.port, NS)
    try:
        assert client.call("o", {"p": "/presence/ada", "d": "offline"})["s"] == "ok"
        assert client.put("/presence/ada", "online")["s"] == "ok"
    finally:
        client.drop()
    assert postgres.sql(database, "SELECT count(*) FROM hearth_sessions") in ([["1"]], [["0"]])
    assert wait_for(lambda: get(b, "presence/ada").json() in ("online", "offline"))
    # A second session, still open when its node is killed.
    client = WireClient(a.port, NS)
    assert client.call("o", {"p": "/presence/bob", "d": "offline"})["s"] == "ok"
    assert client.put("/presence/bob", "online")["s"] == "ok"
    assert postgres.sql(database, "SELECT count(*) FROM hearth_sessions") == [["1"]], "kept in PostgreSQL"
    a.process.kill()
    a.process.wait(timeout=10)
    assert wait_for(lambda: get(b, "presence/ada").json() == "offline"), "a dropped session's write is made at once"
    started = time.monotonic()
    assert wait_for(lambda: get(b, "presence/bob").json() == "offline", seconds=60), "another node made it"
    print(f"made {time.monotonic() - started:.1f} s after the kill")
    assert wait_for(lambda: postgres.sql(database, "SELECT count(*) FROM hearth_sessions") == [["0"]])


def test_postgres_stopped_and_started_under_load_on_three_nodes(hearth_launcher, tmp_path, url, postgres):
    cluster = nodes(hearth_launcher, tmp_path, url)
    acknowledged: list[str] = []
    statuses: list[int] = []
    unexpected: list[str] = []
    stop = threading.Event()

    def writer(index: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            node = cluster[index % 3]
            try:
                response = requests.post(f"{node.base_url}/load.json", params={"ns": NS}, json={"w": index, "n": n}, timeout=20)
            except requests.RequestException as error:
                unexpected.append(f"no answer: {error}")
                continue
            statuses.append(response.status_code)
            if response.status_code == 200:
                acknowledged.append(response.json()["name"])
            else:
                if response.status_code != 503 or "PostgreSQL" not in response.json()["error"]:
                    unexpected.append(response.text)
                time.sleep(0.05)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1)
        postgres.stop()
        try:
            time.sleep(1)
            for node in cluster:
                assert get(node, "load", shallow="true").status_code == 200, "reads go on from memory"
        finally:
            postgres.start()
        before = len(acknowledged)
        assert wait_for(lambda: len(acknowledged) > before + 30, seconds=30), "writes resume on every node"
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert not unexpected, unexpected[:5]
    assert 503 in statuses
    for node in cluster:
        assert wait_for(lambda: set(acknowledged) <= set(get(node, "load", shallow="true").json() or {}), seconds=15)
    sequences = log_sequences(postgres, url)
    assert sequences == list(range(sequences[0], sequences[0] + len(sequences)))


def test_the_nginx_example_in_front_of_three_nodes(hearth_launcher, tmp_path, url):
    """Examples/cluster/nginx.conf, with its ports rewritten: every request of a namespace
    (writes, reads, streams, the realtime protocol) reaches one node, other namespaces spread
    over the nodes, and when that node is killed its namespace moves to another node with
    everything acknowledged."""
    import re
    import shutil
    import socket
    from pathlib import Path

    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    assert Path(nginx).exists(), "nginx is missing: `sudo apt-get install -y nginx` (`make system-deps` does)"
    cluster = nodes(hearth_launcher, tmp_path, url)
    example = (Path(__file__).resolve().parents[2] / "Examples" / "cluster" / "nginx.conf").read_text()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = example
    for index, node in enumerate(cluster):
        config = config.replace(f"127.0.0.1:900{index + 1}", f"127.0.0.1:{node.port}")
    config = config.replace("listen 8080;", f"listen 127.0.0.1:{port};")
    config = re.sub(r"worker_processes auto;", f"worker_processes 1;\npid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/nginx-error.log;", config)
    # Which node served each request: the upstream address in the access log.
    config = config.replace("http {", "http {\n    log_format routed '$request_method|$uri|$arg_ns|$upstream_addr';\n"
                            f"    access_log {tmp_path}/nginx-access.log routed;", 1)
    (tmp_path / "nginx.conf").write_text(config)
    process = subprocess.Popen([nginx, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-g", "daemon off;"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    by_port = {f"127.0.0.1:{node.port}": node for node in cluster}

    def served(namespace: str) -> set[str]:
        lines = (tmp_path / "nginx-access.log").read_text().splitlines()
        # The node that answered: the last address (nginx lists those it tried).
        return {line.split("|")[3].split(",")[-1].strip() for line in lines if line.split("|")[2] == namespace}

    try:
        assert wait_for(lambda: _answers(f"{base}/.health")), (tmp_path / "nginx-error.log").read_text()
        # Every kind of request of one namespace reaches the same node.
        name = requests.post(f"{base}/feed.json", params={"ns": NS}, json={"via": "nginx"}, timeout=10).json()["name"]
        assert requests.get(f"{base}/feed/{name}.json", params={"ns": NS}, timeout=10).json() == {"via": "nginx"}
        stream = SSEStream(f"{base}/feed.json", params={"ns": NS})
        try:
            stream.next_event()
            client = WireClient(port, NS)
            try:
                assert client.put("/feed/ws", "written")["s"] == "ok"
            finally:
                client.close()
            stream.expect("put", "/ws", "written")
        finally:
            stream.close()
        assert wait_for(lambda: len((tmp_path / "nginx-access.log").read_text().splitlines()) >= 5)
        [owner] = served(NS)
        for node in cluster:
            assert wait_for(lambda: requests.get(f"{node.base_url}/feed/ws.json", params={"ns": NS}, timeout=10).json() == "written")
        # Namespaces spread over the nodes.
        for i in range(12):
            assert requests.put(f"{base}/x.json", params={"ns": f"n{i}"}, json=i, timeout=10).status_code == 200
        assert len(set().union(*(served(f"n{i}") for i in range(12)))) >= 2, "namespaces spread over the nodes"
        # The owner dies: the namespace moves to another node, which has everything.
        by_port[owner].process.kill()
        by_port[owner].process.wait(timeout=10)
        statuses = []
        for i in range(10):
            try:
                statuses.append(requests.post(f"{base}/feed.json", params={"ns": NS}, json={"after": i}, timeout=10).status_code)
            except requests.RequestException:
                statuses.append(0)
        assert statuses.count(200) >= 9, statuses
        stored = requests.get(f"{base}/feed.json", params={"ns": NS}, timeout=10).json()
        assert stored[name] == {"via": "nginx"} and stored["ws"] == "written"
        # A POST that got no answer (or a 502) may or may not have been committed.
        after = sum(1 for value in stored.values() if isinstance(value, dict) and "after" in value)
        assert statuses.count(200) <= after <= len(statuses), (after, statuses)
        assert len(served(NS)) == 2, "the namespace moved to one other node"
    finally:
        process.terminate()
        process.wait(timeout=10)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


@pytest.mark.parametrize("address", ["ftp://127.0.0.1:9001", "http://127.0.0.1", "http://127.0.0.1:9001/path", "nonsense"])
def test_a_bad_advertise_url_stops_the_start_with_a_clear_error(hearth_binary, tmp_path, address):
    result = subprocess.run([str(hearth_binary), "serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", str(tmp_path / "d"),
                             "--advertise-url", address], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "advertise-url must be http://host:port" in result.stderr + result.stdout
