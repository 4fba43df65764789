"""Namespaces stored in PostgreSQL (`hearth serve --storage postgres://…`), against a private
PostgreSQL 15 cluster the tests start themselves (`postgres_cluster.py`): what is written is
in PostgreSQL's tables and is there after a restart or a kill -9, rules are stored there,
snapshots trim the log, writes are refused with 503 while PostgreSQL is down and resume when
it is back, a node behind PostgreSQL takes the newer records before committing, and a tool that
must be alone is refused while nodes serve.
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

from compat_helpers import HOST, wait_for
from test_streaming import SSEStream
from wire_client import WireClient

OWNER = {"Authorization": "Bearer owner"}


@pytest.fixture
def database(postgres):
    name = "h" + uuid.uuid4().hex[:12]
    return name, postgres.create_database(name)


def serve(hearth_launcher, tmp_path, url: str, *extra: str, log_name: str = "pg"):
    return hearth_launcher(tmp_path / "data", tmp_path, extra_args=["--storage", url, *extra], log_name=log_name)


def post(server, path: str, value, namespace: str = "plant") -> requests.Response:
    return requests.post(f"{server.base_url}/{path}.json", params={"ns": namespace}, json=value, timeout=10)


def get(server, path: str, namespace: str = "plant", **params):
    return requests.get(f"{server.base_url}/{path}.json", params={"ns": namespace, **params}, timeout=10)


def test_writes_rules_and_namespaces_live_in_postgres_and_survive_a_restart(hearth_launcher, tmp_path, postgres, database):
    name, url = database
    server = serve(hearth_launcher, tmp_path, url)
    names = [post(server, "blessing", {"device": f"d{i}", "ok": True}).json()["name"] for i in range(5)]
    rules = '{"rules": {".read": true, ".write": true, "blessing": {".indexOn": ["device"]}}}'
    assert requests.put(f"{server.base_url}/.settings/rules.json", params={"ns": "plant"}, data=rules, headers=OWNER,
                        timeout=10).status_code == 200
    assert postgres.sql(name, "SELECT namespace, count(*) FROM hearth_log GROUP BY namespace") == [["plant", "5"]]
    assert postgres.sql(name, "SELECT name FROM hearth_namespaces") == [["plant"]]
    assert postgres.sql(name, "SELECT max(version) FROM hearth_schema") == [["2"]]
    server.process.terminate()
    server.process.wait(timeout=15)
    again = serve(hearth_launcher, tmp_path, url, log_name="pg-again")
    assert sorted(get(again, "blessing").json()) == sorted(names)
    ordered = get(again, "blessing", orderBy='"device"', limitToLast=2).json()
    assert [record["device"] for record in ordered.values()] == ["d3", "d4"], "the stored rules' index serves the query"
    stored = requests.get(f"{again.base_url}/.settings/rules.json", params={"ns": "plant"}, headers=OWNER, timeout=10).json()
    assert stored["rules"]["blessing"][".indexOn"] == ["device"]
    assert requests.get(f"{again.base_url}/.inspect/databases.json", headers=OWNER, timeout=10).json() == [{"name": "plant"}]


def test_every_acknowledged_write_survives_kill_9_under_load(hearth_launcher, tmp_path, database):
    _, url = database
    server = serve(hearth_launcher, tmp_path, url)
    acknowledged: list[str] = []
    stop = threading.Event()

    def writer(index: int) -> None:
        session = requests.Session()
        n = 0
        while not stop.is_set():
            try:
                response = session.post(f"{server.base_url}/log.json", params={"ns": "plant"},
                                        json={"writer": index, "n": n}, timeout=5)
            except requests.RequestException:
                return
            if response.status_code == 200:
                acknowledged.append(response.json()["name"])
            n += 1

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(2)
    server.process.kill()
    stop.set()
    for thread in threads:
        thread.join(10)
    assert len(acknowledged) > 50
    again = serve(hearth_launcher, tmp_path, url, log_name="pg-after-kill")
    stored = get(again, "log", shallow="true").json()
    missing = [name for name in acknowledged if name not in stored]
    assert not missing, f"{len(missing)} acknowledged writes lost"


def test_snapshots_trim_the_log_and_restarts_load_them(hearth_launcher, tmp_path, postgres, database):
    name, url = database
    server = serve(hearth_launcher, tmp_path, url, "--snapshot-after-records", "20")
    for i in range(50):
        assert requests.put(f"{server.base_url}/counter/c{i:02}.json", params={"ns": "plant"}, json=i, timeout=10).status_code == 200
    deadline = time.monotonic() + 10
    while not postgres.sql(name, "SELECT sequence FROM hearth_snapshots") and time.monotonic() < deadline:
        time.sleep(0.1)
    [[snapshot]] = postgres.sql(name, "SELECT sequence FROM hearth_snapshots")
    assert int(snapshot) >= 20
    # Rows a snapshot holds stay for ten minutes (a node that lost a commit's answer looks for
    # its rows); then the next snapshot deletes them.
    assert postgres.sql(name, "SELECT count(*) FROM hearth_log") == [["50"]]
    postgres.sql(name, "UPDATE hearth_log SET committed_at = committed_at - interval '20 minutes'")
    for i in range(50, 70):
        assert requests.put(f"{server.base_url}/counter/c{i:02}.json", params={"ns": "plant"}, json=i, timeout=10).status_code == 200
    assert wait_for(lambda: int(postgres.sql(name, "SELECT coalesce(min(sequence), 0) FROM hearth_log")[0][0]) > 40)
    [[snapshot]] = postgres.sql(name, "SELECT sequence FROM hearth_snapshots")
    [[first]] = postgres.sql(name, "SELECT coalesce(min(sequence)::text, 'none') FROM hearth_log "
                                   "WHERE committed_at < now() - interval '10 minutes'")
    assert first == "none" or int(first) > int(snapshot), "old rows the snapshot holds are deleted"
    server.process.kill()
    server.process.wait(timeout=10)
    again = serve(hearth_launcher, tmp_path, url, log_name="pg-snapshot")
    assert get(again, "counter").json() == {f"c{i:02}": i for i in range(70)}


def test_streams_follow_writes_on_postgres_storage(hearth_launcher, tmp_path, database):
    _, url = database
    server = serve(hearth_launcher, tmp_path, url)
    stream = SSEStream(f"{server.base_url}/feed.json", params={"ns": "plant"})
    try:
        stream.expect("put", "/", None)
        assert requests.put(f"{server.base_url}/feed/a.json", params={"ns": "plant"}, json=1, timeout=10).status_code == 200
        stream.expect("put", "/a", 1)
    finally:
        stream.close()


def test_writes_get_503_while_postgres_is_down_and_resume_when_it_is_back(hearth_launcher, tmp_path, postgres, database):
    _, url = database
    server = serve(hearth_launcher, tmp_path, url)
    assert post(server, "items", {"n": 1}).status_code == 200
    postgres.stop()
    try:
        refused = post(server, "items", {"n": 2})
        assert refused.status_code == 503
        assert "PostgreSQL" in refused.json()["error"] and "nothing was written" in refused.json()["error"]
        assert len(get(server, "items").json()) == 1, "reads go on from memory"
    finally:
        postgres.start()
    deadline = time.monotonic() + 20
    statuses = []
    while time.monotonic() < deadline:
        statuses.append(post(server, "items", {"n": 3}).status_code)
        if statuses[-1] == 200:
            break
        time.sleep(0.2)
    assert statuses[-1] == 200, statuses
    assert statuses.count(503) <= 2, f"writes resume once PostgreSQL is back: {statuses}"
    stored = get(server, "items").json()
    assert sorted(record["n"] for record in stored.values()) == [1, 3]


def test_a_node_behind_postgres_takes_the_newer_records_before_committing(hearth_launcher, tmp_path, postgres, database):
    """The fence: a commit goes through only if PostgreSQL's last record for the namespace is
    the one before it. A node that missed another writer's record has its commit refused,
    takes that record, and applies its write again on top of it."""
    name, url = database
    server = serve(hearth_launcher, tmp_path, url)
    names = [post(server, "items", {"n": 0}).json()["name"]]
    for round in range(5):
        [[last]] = postgres.sql(name, "SELECT max(sequence) FROM hearth_log WHERE namespace = 'plant'")
        # Another writer commits the next record behind this node's back, with no notification:
        # a copy of the last one (so that its effect is known) with the next sequence number in
        # its payload's first 8 bytes (little-endian; the number is below 256 here). The node
        # may read it first on its own (it looks every 250 ms); mostly its commit meets it.
        postgres.sql(name, "INSERT INTO hearth_log (namespace, sequence, push_time, record) "
                           "SELECT namespace, sequence + 1, push_time, overlay(record placing "
                           "decode(lpad(to_hex(sequence + 1), 2, '0') || '00000000000000', 'hex') from 1 for 8) "
                           f"FROM hearth_log WHERE namespace = 'plant' AND sequence = {last}")
        written = post(server, "items", {"n": round + 1})
        assert written.status_code == 200, written.text
        names.append(written.json()["name"])
        assert postgres.sql(name, f"SELECT count(*) FROM hearth_log WHERE namespace = 'plant' AND sequence > {last}") == [["2"]]
    assert sorted(get(server, "items").json()) == sorted(names)
    sequences = [int(row[0]) for row in postgres.sql(name, "SELECT sequence FROM hearth_log ORDER BY 1")]
    assert sequences == list(range(1, 12)), "one linear log"
    log = "".join(path.read_text() for path in tmp_path.glob("pg-*.log"))
    assert "another node wrote to it first" in log, "at least one commit met the fence"


def test_an_older_schema_is_migrated_and_its_data_kept(hearth_launcher, tmp_path, postgres, database):
    name, url = database
    server = serve(hearth_launcher, tmp_path, url)
    assert post(server, "items", {"n": 1}).status_code == 200
    server.process.terminate()
    server.process.wait(timeout=15)
    # Back to version 1's layout, as an older Hearth left it.
    postgres.sql(name, "ALTER TABLE hearth_log DROP COLUMN commit_id, DROP COLUMN committed_at")
    postgres.sql(name, "DROP TABLE hearth_leases, hearth_nodes, hearth_sessions")
    postgres.sql(name, "DELETE FROM hearth_schema; INSERT INTO hearth_schema VALUES (1)")
    again = serve(hearth_launcher, tmp_path, url, log_name="pg-migrated")
    assert [record["n"] for record in get(again, "items").json().values()] == [1]
    assert post(again, "items", {"n": 2}).status_code == 200
    assert postgres.sql(name, "SELECT max(version) FROM hearth_schema") == [["2"]]
    assert postgres.sql(name, "SELECT count(commit_id) FROM hearth_log") == [["1"]], "new rows carry their commit id"


def test_a_tool_that_must_be_alone_is_refused_while_nodes_serve(hearth_launcher, hearth_binary, tmp_path, database):
    _, url = database
    serve(hearth_launcher, tmp_path, url)
    hearth_launcher(tmp_path / "second", tmp_path, extra_args=["--storage", url], log_name="second")
    compact = subprocess.run([str(hearth_binary), "compact", "--data-dir", str(tmp_path / "tool"), "--storage", url],
                             capture_output=True, text=True, timeout=30)
    assert compact.returncode != 0
    assert "another Hearth node uses" in compact.stderr + compact.stdout


@pytest.mark.parametrize("storage, message", [
    ("postgres://nobody@127.0.0.1:1/none", "PostgreSQL storage"),
    ("mysql://u@h/db", "storage must be file or a postgres://"),
    ("postgres://127.0.0.1/db", "storage must be file or a postgres://"),
])
def test_a_bad_storage_setting_stops_the_start_with_a_clear_error(hearth_binary, tmp_path, storage, message):
    result = subprocess.run([str(hearth_binary), "serve", "--host", HOST, "--port", "0", "--data-dir", str(tmp_path / "d"),
                             "--storage", storage], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert message in result.stderr + result.stdout


def run_tool(hearth_binary, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(hearth_binary), *arguments], capture_output=True, text=True, timeout=60)


def test_verify_and_export_read_postgres_storage_next_to_a_running_node(hearth_launcher, hearth_binary, tmp_path, database):
    _, url = database
    server = serve(hearth_launcher, tmp_path, url, "--snapshot-after-records", "5")
    for i in range(8):
        assert requests.put(f"{server.base_url}/sensors/s{i}.json", params={"ns": "plant"}, json={"t": i}, timeout=10).status_code == 200
    time.sleep(1)
    verified = run_tool(hearth_binary, "verify", "--storage", url)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "plant: snapshot at sequence" in verified.stdout and "last sequence 8" in verified.stdout
    exported = run_tool(hearth_binary, "export", "--storage", url, "--namespace", "plant", "--path", "/sensors")
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout) == {f"s{i}": {"t": i} for i in range(8)}
    # Writing tools take the node's lock: refused while the node runs.
    document = tmp_path / "x.json"
    document.write_text('{"a": 1}')
    imported = run_tool(hearth_binary, "import", "--storage", url, "--namespace", "plant", "--path", "/x", str(document))
    assert imported.returncode != 0 and "another Hearth node uses" in imported.stderr, imported.stdout + imported.stderr
    assert get(server, "x").json() is None
    repair = run_tool(hearth_binary, "repair", "--storage", url)
    assert repair.returncode != 0 and "repair works on a data directory" in repair.stderr


def test_a_namespace_moves_from_files_to_postgres_and_back(hearth_launcher, hearth_binary, tmp_path, postgres, database):
    _, url = database
    files = tmp_path / "files"
    on_files = hearth_launcher(files, tmp_path, log_name="files")
    rules = '{"rules": {".read": true, ".write": true, "blessing": {".indexOn": ["mac"]}}}'
    assert requests.put(f"{on_files.base_url}/.settings/rules.json", params={"ns": "plant"}, data=rules, headers=OWNER,
                        timeout=10).status_code == 200
    data = {"blessing": {"-a": {"mac": "0c2a", "ok": True}, "-b": {"mac": "0c2b", "ok": False}}, "count": {".value": 2, ".priority": 1}}
    assert requests.put(f"{on_files.base_url}/.json", params={"ns": "plant", "format": "export"}, json=data,
                        timeout=10).status_code == 200
    on_files.process.terminate()
    on_files.process.wait(timeout=15)
    moved = run_tool(hearth_binary, "move-namespace", "--data-dir", str(files), "--namespace", "plant", "--from", "file", "--to", url)
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert "postgres://postgres@" in moved.stdout and "@127.0.0.1" in moved.stdout
    again = run_tool(hearth_binary, "move-namespace", "--data-dir", str(files), "--namespace", "plant", "--from", "file", "--to", url)
    assert again.returncode != 0 and "already holds data" in again.stderr
    on_postgres = serve(hearth_launcher, tmp_path, url, log_name="moved")
    assert requests.get(f"{on_postgres.base_url}/.json", params={"ns": "plant", "format": "export"}, timeout=10).json() == data
    stored = requests.get(f"{on_postgres.base_url}/.settings/rules.json", params={"ns": "plant"}, headers=OWNER, timeout=10)
    assert stored.json()["rules"]["blessing"][".indexOn"] == ["mac"]
    on_postgres.process.terminate()
    on_postgres.process.wait(timeout=15)
    back = tmp_path / "back"
    returned = run_tool(hearth_binary, "move-namespace", "--data-dir", str(back), "--namespace", "plant", "--from", url, "--to", "file")
    assert returned.returncode == 0, returned.stdout + returned.stderr
    on_files_again = hearth_launcher(back, tmp_path, log_name="back")
    assert requests.get(f"{on_files_again.base_url}/.json", params={"ns": "plant", "format": "export"}, timeout=10).json() == data


def test_a_follower_serves_the_writers_data_and_streams_with_the_same_event_ids(hearth_launcher, tmp_path, database):
    _, url = database
    writer = serve(hearth_launcher, tmp_path, url, "--snapshot-after-records", "10")
    assert post(writer, "items", {"n": 1}).status_code == 200
    follower = hearth_launcher(tmp_path / "follower", tmp_path, extra_args=["--storage", url, "--follow"], log_name="follower")
    assert len(get(follower, "items").json()) == 1
    on_follower = SSEStream(f"{follower.base_url}/items.json", params={"ns": "plant"})
    on_writer = SSEStream(f"{writer.base_url}/items.json", params={"ns": "plant"})
    try:
        on_follower.next_event()
        on_writer.next_event()
        name = post(writer, "items", {"n": 2}).json()["name"]
        seen = on_follower.expect("put", f"/{name}", {"n": 2})
        written = on_writer.expect("put", f"/{name}", {"n": 2})
        assert seen.id == written.id, "the writer's sequence numbers are the event ids on every node"
    finally:
        on_follower.close()
        on_writer.close()
    refused = post(follower, "items", {"n": 3})
    assert refused.status_code == 503 and "takes no writes" in refused.json()["error"]
    # Past a snapshot that trimmed the log, and a namespace created after the follower started.
    for i in range(25):
        assert requests.put(f"{writer.base_url}/counter/c{i:02}.json", params={"ns": "plant"}, json=i, timeout=10).status_code == 200
    assert requests.put(f"{writer.base_url}/x.json", params={"ns": "later"}, json=1, timeout=10).status_code == 200
    assert wait_for(lambda: get(follower, "counter").json() == {f"c{i:02}": i for i in range(25)})
    assert wait_for(lambda: get(follower, "x", namespace="later").json() == 1)
    assert get(follower, "").json() == get(writer, "").json()


def test_a_follower_catches_up_from_the_writers_snapshot(hearth_launcher, tmp_path, postgres, database):
    """Records trimmed by a snapshot before the follower read them arrive as the snapshot."""
    name, url = database
    writer = serve(hearth_launcher, tmp_path, url, "--snapshot-after-records", "5")
    follower = hearth_launcher(tmp_path / "follower", tmp_path, extra_args=["--storage", url, "--follow"], log_name="follower")
    assert requests.put(f"{writer.base_url}/v/k00.json", params={"ns": "plant"}, json=0, timeout=10).status_code == 200
    assert wait_for(lambda: get(follower, "v").json() == {"k00": 0}), "the follower follows the namespace"
    stream = SSEStream(f"{follower.base_url}/v.json", params={"ns": "plant"})
    last_id = stream.expect("put", "/", {"k00": 0}).id
    stream.close()
    follower.process.send_signal(signal.SIGSTOP)
    try:
        for i in range(1, 30):
            assert requests.put(f"{writer.base_url}/v/k{i:02}.json", params={"ns": "plant"}, json=i, timeout=10).status_code == 200
        assert wait_for(lambda: int(postgres.sql(name, "SELECT coalesce(max(sequence), 0) FROM hearth_snapshots")[0][0]) >= 20)
    finally:
        follower.process.send_signal(signal.SIGCONT)
    expected = {f"k{i:02}": i for i in range(30)}
    assert wait_for(lambda: get(follower, "v").json() == expected)
    # A stream resuming from before the jump gets what it missed: applied in order, the events
    # rebuild the current value.
    resumed = SSEStream(f"{follower.base_url}/v.json", params={"ns": "plant"}, headers={"Last-Event-ID": last_id})
    try:
        value = {"k00": 0}
        while value != expected:
            event = resumed.next_event(timeout=10)
            path, data = event.path, event.payload
            if event.event == "put" and path == "/":
                value = dict(data or {})
            elif event.event == "put":
                value[path.strip("/")] = data
            else:
                assert event.event == "patch" and path == "/", event
                value.update(data)
    finally:
        resumed.close()


def test_a_follower_takes_the_writers_rules_and_refuses_what_it_would_store(hearth_launcher, tmp_path, database):
    _, url = database
    writer = serve(hearth_launcher, tmp_path, url)
    assert requests.put(f"{writer.base_url}/secret/x.json", params={"ns": "plant"}, json=1, timeout=10).status_code == 200
    follower = hearth_launcher(tmp_path / "follower", tmp_path, extra_args=["--storage", url, "--follow"], log_name="follower")
    assert get(follower, "secret").status_code == 200
    closed = '{"rules": {".write": true, "public": {".read": true}}}'
    assert requests.put(f"{writer.base_url}/.settings/rules.json", params={"ns": "plant"}, data=closed, headers=OWNER,
                        timeout=10).status_code == 200
    assert get(writer, "secret").status_code == 401
    assert wait_for(lambda: get(follower, "secret").status_code == 401), "rules stored on the writer apply on the follower"
    refused = requests.put(f"{follower.base_url}/.settings/rules.json", params={"ns": "plant"}, data=closed, headers=OWNER,
                           timeout=10)
    assert refused.status_code == 503 and "takes no writes" in refused.json()["error"]
    client = WireClient(follower.port, "plant")
    try:
        registration = client.call("o", {"p": "/presence/me", "d": None})
        assert registration["s"] == "unavailable" and "takes no writes" in registration["d"]
        assert client.put("/x", 1)["s"] == "unavailable"
    finally:
        client.close()


def test_tls_to_postgres_with_the_server_certificate_verified(hearth_launcher, hearth_binary, tmp_path, postgres, database):
    name, url = database
    authority = postgres.enable_tls()
    server = serve(hearth_launcher, tmp_path, f"{url}?sslmode=verify-full&sslrootcert={authority}")
    assert post(server, "items", {"n": 1}).status_code == 200
    encrypted = postgres.sql(name, "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
                                   f"WHERE a.datname = '{name}' AND a.pid <> pg_backend_pid()")
    assert encrypted and all(row == ["t"] for row in encrypted), encrypted
    # A certificate signed by another authority is refused, with the reason.
    other = tmp_path / "other-ca.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(tmp_path / "other.key"),
                    "-out", str(other), "-days", "1", "-subj", "/CN=other"], capture_output=True, check=True)
    refused = subprocess.run([str(hearth_binary), "serve", "--host", HOST, "--port", "0", "--data-dir", str(tmp_path / "d"),
                              "--storage", f"{url}?sslmode=verify-full&sslrootcert={other}"],
                             capture_output=True, text=True, timeout=30)
    assert refused.returncode == 2
    assert "PostgreSQL storage" in refused.stderr + refused.stdout
