"""The realtime protocol (`/.ws`) as the Firebase SDKs speak it, byte for byte, from a Python
client written from the protocol reference (`wire_client.py`).

Covers the connection (hello, pings, stats, framing both ways), every action (listen and
unlisten with and without queries, get, put, merge, priorities, on-disconnect put/merge/cancel,
auth/gauth/unauth, App Check), the ordering the SDKs rely on (a listen's data before its `ok`,
a write's pushes before its `ok`), limit windows under random writes compared with fresh
queries, interop with REST and SSE, transactions with the SDKs' hash (and 50 concurrent
incrementers), the rules (denials, revocation, unindexed queries), tokens (JWT, `owner`, mock
tokens, expiry) and bad input.
"""

from __future__ import annotations

import json
import random
import threading
import time
from typing import Any

import pytest
import requests

from compat_helpers import HOST, local_session
from test_rules_auth import launch, secret  # noqa: F401  (fixtures)
from test_streaming import SSEStream
from wire_client import WireClient, key_order, mock_user_token, node_hash


def rest(server, namespace: str, method: str, path: str, token: str | None = "owner", **kwargs) -> requests.Response:
    session = local_session()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    params = {"ns": namespace, **kwargs.pop("params", {})}
    response = session.request(method, f"{server.base_url}/{path.strip('/')}.json", params=params, headers=headers,
                               timeout=10, **kwargs)
    session.close()
    return response


@pytest.fixture
def client(hearth_server, namespace):
    clients: list[WireClient] = []

    def connect(**options) -> WireClient:
        opened = WireClient(hearth_server.port, namespace, **options)
        clients.append(opened)
        return opened

    yield connect
    for opened in clients:
        try:
            opened.close()
        except Exception:
            pass


# -- connection -------------------------------------------------------------------------------

def test_hello_carries_time_host_and_session_then_pings_and_stats_are_answered(client, hearth_server):
    before = int(time.time() * 1000)
    socket = client()
    hello = socket.hello["d"]["d"]
    assert isinstance(hello["ts"], int) and abs(hello["ts"] - before) < 5000
    assert hello["v"] == "5"
    assert hello["h"] == f"{HOST}:{hearth_server.port}", "h echoes the Host the client used"
    assert isinstance(hello["s"], str) and hello["s"]
    socket.send({"t": "c", "d": {"t": "p", "d": {}}})
    assert socket.receive() == {"t": "c", "d": {"t": "o", "d": {}}}
    assert socket.call("s", {"c": {"sdk.js.1-1-5": 1}}) == {"s": "ok", "d": ""}
    assert socket.call("appcheck", {"token": "x"})["s"] == "ok"
    assert socket.call("unappeck", {})["s"] == "ok"
    # A keep-alive frame needs no answer, and a second connection gets its own session.
    socket.ws.send("0")
    assert socket.call("s", {"c": {}})["s"] == "ok"
    assert client().hello["d"]["d"]["s"] != hello["s"]


def test_listen_data_comes_before_its_ok_and_a_writes_pushes_before_its_ok(client):
    socket = client()
    number = socket.request("q", {"p": "/rooms/r1", "h": ""})
    assert socket.in_order(2) == [
        {"a": "d", "b": {"p": "rooms/r1", "d": None}},
        {"r": number, "b": {"s": "ok", "d": {}}},
    ]
    number = socket.request("p", {"p": "/rooms/r1/count", "d": 1})
    assert socket.in_order(2) == [
        {"a": "d", "b": {"p": "rooms/r1/count", "d": 1}},
        {"r": number, "b": {"s": "ok", "d": ""}},
    ]
    number = socket.request("m", {"p": "/rooms/r1", "d": {"title": "Hello", "meta/updated": {".sv": "timestamp"}}})
    push, reply = socket.in_order(2)
    assert reply == {"r": number, "b": {"s": "ok", "d": ""}}
    assert push["a"] == "m" and push["b"]["p"] == "rooms/r1"
    assert push["b"]["d"]["title"] == "Hello"
    stamp = push["b"]["d"]["meta/updated"]
    assert isinstance(stamp, int) and abs(stamp - time.time() * 1000) < 5000, "server values are resolved in pushes"


def test_pipelined_writes_are_applied_and_answered_in_order(client, hearth_server, namespace):
    socket = client()
    numbers = [socket.request("p", {"p": "/seq", "d": i}) for i in range(200)]
    for number in numbers:
        assert socket.reply(number)["s"] == "ok"
    assert rest(hearth_server, namespace, "GET", "seq").json() == 199


def test_get_answers_a_value_or_a_query(client, hearth_server, namespace):
    rest(hearth_server, namespace, "PUT", "scores", json={"a": 3, "b": 1, "c": 2})
    socket = client()
    assert socket.call("g", {"p": "/scores", "q": {}}) == {"s": "ok", "d": {"a": 3, "b": 1, "c": 2}}
    assert socket.call("g", {"p": "/scores", "q": {"i": ".value", "l": 2, "vf": "l"}}) == {"s": "ok", "d": {"b": 1, "c": 2}}
    assert socket.call("g", {"p": "/missing", "q": {}}) == {"s": "ok", "d": None}


def test_priorities_reach_the_client_in_export_format(client):
    socket = client()
    socket.listen("/items")
    socket.push()
    assert socket.put("/items/a", {".value": 5, ".priority": 2})["s"] == "ok"
    assert socket.push()["b"] == {"p": "items/a", "d": {".value": 5, ".priority": 2}}
    # setPriority: a put at <path>/.priority changes only the priority.
    assert socket.put("/items/a/.priority", "z")["s"] == "ok"
    assert socket.push()["b"] == {"p": "items/a", "d": {".value": 5, ".priority": "z"}}
    assert socket.call("g", {"p": "/items", "q": {}})["d"] == {"a": {".value": 5, ".priority": "z"}}


def test_a_rest_write_reaches_a_socket_and_a_socket_write_reaches_sse_and_rest(client, hearth_server, namespace):
    socket = client()
    socket.listen("/shared")
    socket.push()
    stream = SSEStream(f"{hearth_server.base_url}/shared.json", params={"ns": namespace})
    try:
        stream.expect("put", "/", None)
        assert rest(hearth_server, namespace, "PUT", "shared/fromRest", json={"n": 1}).status_code == 200
        assert socket.push()["b"] == {"p": "shared/fromRest", "d": {"n": 1}}
        stream.expect("put", "/fromRest", {"n": 1})
        assert socket.put("/shared/fromSocket", "hi")["s"] == "ok"
        stream.expect("put", "/fromSocket", "hi")
        assert rest(hearth_server, namespace, "GET", "shared/fromSocket").json() == "hi"
    finally:
        stream.close()


def test_unlisten_stops_the_pushes(client, hearth_server, namespace):
    socket = client()
    socket.listen("/a")
    socket.push()
    assert socket.call("n", {"p": "/a"})["s"] == "ok"
    rest(hearth_server, namespace, "PUT", "a", json=1)
    assert socket.put("/b", 2)["s"] == "ok"
    assert socket.pushes_now() == []


def test_a_message_longer_than_a_slice_travels_in_numbered_frames_both_ways(client, hearth_server, namespace):
    socket = client()
    socket.listen("/big")
    socket.push()
    text = "é" * 20000 + "x" * 30000   # 50,000 characters: four slices
    assert socket.put("/big", text)["s"] == "ok"
    assert socket.push()["b"] == {"p": "big", "d": text}
    assert rest(hearth_server, namespace, "GET", "big").json() == text


# -- queries ----------------------------------------------------------------------------------

DATA = {
    "a": {"score": 5, "name": "ann", ".priority": 3},
    "b": {"score": 1, "name": "bob", ".priority": "x"},
    "c": {"score": 5, "name": "cat"},
    "d": {"score": "high", "name": "dan", ".priority": 1},
    "e": {"name": "eve", ".priority": 3},
    "1": {"score": 3, "name": "one"},
    "10": {"score": 2, "name": "ten"},
    "9": {"score": True, "name": "nine"},
}

# (query object as the SDKs send it, the same query as REST parameters)
QUERY_SHAPES = [
    ({"i": "score", "sp": 2, "ep": 5}, {"orderBy": '"score"', "startAt": "2", "endAt": "5"}),
    ({"i": "score", "sp": 5, "ep": 5}, {"orderBy": '"score"', "equalTo": "5"}),
    ({"i": "score", "sp": 5, "sn": "b", "ep": 5}, {"orderBy": '"score"', "startAt": '5,"b"', "endAt": "5"}),
    # startAfter / endBefore as JS (sin/ein), Android ([MAX_KEY]) and iOS ([MAX_NAME]) send them.
    ({"i": "score", "sp": 2, "sn": "[MAX_NAME]", "sin": False}, {"orderBy": '"score"', "startAfter": "2"}),
    ({"i": "score", "sp": 2, "sn": "[MAX_KEY]"}, {"orderBy": '"score"', "startAfter": "2"}),
    ({"i": "score", "ep": 5, "en": "[MIN_NAME]", "ein": False}, {"orderBy": '"score"', "endBefore": "5"}),
    ({"i": "score", "ep": 5, "en": "[MIN_NAME]"}, {"orderBy": '"score"', "endBefore": "5"}),
    ({"i": "score", "l": 3, "vf": "l"}, {"orderBy": '"score"', "limitToFirst": "3"}),
    ({"i": "score", "l": 3, "vf": "r"}, {"orderBy": '"score"', "limitToLast": "3"}),
    ({"i": ".key", "sp": "1", "ep": "a"}, {"orderBy": '"$key"', "startAt": '"1"', "endAt": '"a"'}),
    ({"i": ".key", "sp": "10", "sin": False, "l": 2, "vf": "l"}, {"orderBy": '"$key"', "startAfter": '"10"', "limitToFirst": "2"}),
    ({"i": ".key", "l": 2, "vf": "r"}, {"orderBy": '"$key"', "limitToLast": "2"}),
    ({"sp": 3, "ep": "x"}, {"orderBy": '"$priority"', "startAt": "3", "endAt": '"x"'}),
    ({"l": 3, "vf": "l"}, {"orderBy": '"$priority"', "limitToFirst": "3"}),
    ({"i": "name", "sp": "bob", "ep": "dan", "l": 2, "vf": "r"},
     {"orderBy": '"name"', "startAt": '"bob"', "endAt": '"dan"', "limitToLast": "2"}),
]


@pytest.mark.parametrize("query, parameters", QUERY_SHAPES, ids=[json.dumps(q) for q, _ in QUERY_SHAPES])
def test_a_tagged_listen_answers_each_query_shape_as_rest_does(client, hearth_server, namespace, query, parameters):
    assert rest(hearth_server, namespace, "PUT", "people", json=DATA).status_code == 200
    expected = rest(hearth_server, namespace, "GET", "people", params={**parameters, "format": "export"}).json()
    socket = client()
    number = socket.request("q", {"p": "/people", "q": query, "t": 7, "h": ""})
    push, reply = socket.in_order(2)
    # Without an .indexOn in the rules, a child or value ordering is answered with a warning.
    unindexed = query.get("i") not in (None, ".key")
    assert reply == {"r": number, "b": {"s": "ok", "d": {"w": ["no_index"]} if unindexed else {}}}
    assert push["a"] == "d" and push["b"]["t"] == 7 and push["b"]["p"] == "people"
    assert push["b"]["d"] == (expected or None)
    # A query with only an ordering is the whole location: untagged, all children.
    assert socket.call("g", {"p": "/people", "q": query})["d"] == (expected or None)


def test_a_limit_window_stays_exact_under_random_writes(client, hearth_server, namespace):
    rng = random.Random(16)
    seed = {f"k{i}": {"score": rng.randint(0, 20)} for i in range(12)}
    rest(hearth_server, namespace, "PUT", "board", json=seed)
    socket = client()
    writer = client()
    query = {"i": "score", "l": 3, "vf": "r"}
    socket.listen("/board", query, tag=3)
    view: dict[str, Any] = socket.push()["b"]["d"] or {}
    for step in range(60):
        key = f"k{rng.randint(0, 15)}"
        choice = rng.random()
        if choice < 0.2:
            reply = writer.put(f"/board/{key}", None)
        elif choice < 0.4:
            reply = {"s": "ok"} if rest(hearth_server, namespace, "PUT", f"board/{key}/score",
                                          json=rng.randint(0, 20)).status_code == 200 else {"s": "rest failed"}
        else:
            reply = writer.put(f"/board/{key}", {"score": rng.randint(0, 20)})
        assert reply["s"] == "ok"
        # The listener's view, kept only from its tagged pushes, equals a fresh query.
        expected = rest(hearth_server, namespace, "GET", "board",
                        params={"orderBy": '"score"', "limitToLast": "3"}).json() or {}
        deadline = time.monotonic() + 5
        while view != expected and time.monotonic() < deadline:
            try:
                push = socket.push(timeout=max(0.05, deadline - time.monotonic()))
            except TimeoutError:
                break
            body = push["b"]
            assert body.get("t") == 3 and body["p"] == "board", push
            if push["a"] == "d":
                view = body["d"] or {}
            else:
                assert push["a"] == "m"
                for child, value in body["d"].items():
                    if value is None:
                        view.pop(child, None)
                    else:
                        view[child] = value
        assert view == expected, f"step {step}: the window drifted"


# -- transactions -----------------------------------------------------------------------------

HASH_VECTORS = [
    (None, ""),
    (1, "YPVfR2bXt/lcDjiQZ8pOkAd3qkQ="),
    (0, "7ysMph9WPitGP7poMnMHMVPtUlI="),
    (5, "w28swksk9+tXf5jEdS9R5oSFAv8="),
    (True, "E5z61QM0lN/U2WsOnusszCTkR8M="),
    ("hello", "z6sRbrNLwbHX5fdjpvsTtWgXUFc="),
    ("", "Ki0Xy0V6morg0TO3Sxi/jwugYDQ="),
    ({"a": 1, "b": "x"}, "jRI9dwRS9sb4SWm8uuoN7+xBk4g="),
    ({".value": 5, ".priority": 2}, "lfDzIw5VmUgOXT41FhmDyk7Dveo="),
    ({"b": {".value": 1, ".priority": "z"}, "a": {".value": 2, ".priority": 1}, "c": 3}, "vIhHk0MaZOjYThr3YU/Wcr2e8UM="),
    ({"10": 1, "9": 2, "a": 3, "09": 4}, "mgjYhNA//Dw3S63sUrI7d4jveJg="),
]


@pytest.mark.parametrize("value, expected", HASH_VECTORS, ids=[json.dumps(v) for v, _ in HASH_VECTORS])
def test_a_transaction_applies_only_when_its_hash_matches_the_stored_value(client, hearth_server, namespace, value, expected):
    assert node_hash(value) == expected, "the test's hash follows the reference's vectors"
    if value is not None:
        assert rest(hearth_server, namespace, "PUT", "tx", json=value).status_code == 200
    socket = client()
    socket.listen("/tx")
    socket.push()
    stale = socket.put("/tx", "new", hash=node_hash("something else"))
    assert stale["s"] == "datastale" and isinstance(stale["d"], str)
    assert rest(hearth_server, namespace, "GET", "tx", params={"format": "export"}).json() == value
    assert socket.put("/tx", "new", hash=expected) == {"s": "ok", "d": ""}
    assert rest(hearth_server, namespace, "GET", "tx").json() == "new"


def test_fifty_concurrent_sdk_style_incrementers_end_with_the_exact_count(hearth_server, namespace):
    errors: list[str] = []
    retries = [0]
    lock = threading.Lock()

    def increment() -> None:
        try:
            socket = WireClient(hearth_server.port, namespace)
            socket.listen("/counter")
            cache = None
            while True:
                # The client's cache is whatever the pushes said last.
                for push in socket.pushes_now(0.0):
                    if push["b"]["p"] == "counter":
                        cache = push["b"]["d"]
                reply = socket.put("/counter", (cache or 0) + 1, hash=node_hash(cache))
                if reply["s"] == "ok":
                    break
                assert reply["s"] == "datastale", reply
                with lock:
                    retries[0] += 1
            socket.close()
        except Exception as error:  # noqa: BLE001
            errors.append(repr(error))

    threads = [threading.Thread(target=increment) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert rest(hearth_server, namespace, "GET", "counter").json() == 50
    assert retries[0] > 0, "50 concurrent incrementers never conflicted: the test proves nothing"


# -- onDisconnect -----------------------------------------------------------------------------

def test_on_disconnect_writes_run_when_the_connection_closes_cleanly(client, hearth_server, namespace):
    rest(hearth_server, namespace, "PUT", "presence", json={"ann": True, "bob": True, "cat": True})
    watcher = client()
    watcher.listen("/presence")
    watcher.push()
    socket = client()
    assert socket.call("o", {"p": "/presence/ann", "d": None}) == {"s": "ok", "d": ""}
    assert socket.call("om", {"p": "/status", "d": {"ann/last": {".sv": "timestamp"}, "ann/state": "offline"}})["s"] == "ok"
    assert socket.call("o", {"p": "/presence/bob", "d": None})["s"] == "ok"
    assert socket.call("oc", {"p": "/presence/bob", "d": None})["s"] == "ok"
    assert rest(hearth_server, namespace, "GET", "presence/ann").json() is True, "nothing happens before the end"
    before = int(time.time() * 1000)
    socket.close()
    assert watcher.push()["b"] == {"p": "presence/ann", "d": None}
    status = rest(hearth_server, namespace, "GET", "status/ann").json()
    assert status["state"] == "offline" and status["last"] >= before
    assert rest(hearth_server, namespace, "GET", "presence").json() == {"bob": True, "cat": True}


def test_on_disconnect_writes_run_when_the_tcp_connection_drops(client, hearth_server, namespace):
    watcher = client()
    watcher.listen("/presence")
    watcher.push()
    socket = client()
    assert socket.put("/presence/dee", True)["s"] == "ok"
    assert watcher.push()["b"]["d"] is True
    assert socket.call("o", {"p": "/presence/dee", "d": None})["s"] == "ok"
    socket.drop()
    assert watcher.push(timeout=10)["b"] == {"p": "presence/dee", "d": None}


# -- rules and auth ---------------------------------------------------------------------------

RULES = {
    "rules": {
        "public": {".read": True, ".write": True},
        "users": {
            "$uid": {".read": "auth != null && auth.uid == $uid", ".write": "auth != null && auth.uid == $uid"},
        },
        "board": {".read": True, ".write": True},
    }
}


def wire(hearth, namespace: str = "rules-compat") -> WireClient:
    return WireClient(hearth.server.port, namespace)


def test_rules_deny_listens_and_writes_and_auth_grants_them(launch, secret):
    hearth = launch(rules=RULES, flags=secret.flags)
    socket = wire(hearth)
    denied = socket.listen("/users/ann")
    assert denied["s"] == "permission_denied" and isinstance(denied["d"], str)
    assert socket.put("/users/ann/name", "Ann")["s"] == "permission_denied"
    assert socket.call("o", {"p": "/users/ann/online", "d": None})["s"] == "permission_denied", \
        "on-disconnect writes are judged when they are registered"
    reply = socket.call("auth", {"cred": secret.token("ann")})
    assert reply["s"] == "ok" and reply["d"]["auth"]["uid"] == "ann" and isinstance(reply["d"]["expires"], int)
    assert socket.put("/users/ann/name", "Ann")["s"] == "ok"
    assert socket.listen("/users/ann")["s"] == "ok"
    assert socket.push()["b"]["d"] == {"name": "Ann"}
    # Signing out revokes what only the user could read.
    assert socket.call("unauth", {})["s"] == "ok"
    assert socket.push()["a"] == "c"
    socket.close()


def test_a_rules_change_revokes_a_listen_with_its_query(launch):
    hearth = launch(rules=RULES)
    socket = wire(hearth)
    query = {"i": ".key", "l": 2, "vf": "l"}
    assert socket.listen("/public", query, tag=4)["s"] == "ok"
    socket.push()
    assert socket.listen("/board")["s"] == "ok"
    socket.push()
    closed = json.loads(json.dumps(RULES))
    closed["rules"]["public"][".read"] = False
    assert hearth.upload_rules(json.dumps(closed)).status_code == 200
    revoked = socket.push()
    assert revoked == {"a": "c", "b": {"p": "public", "q": [query]}}
    # The other listen stays, and the revoked one gets nothing more.
    hearth.admin("PUT", "public/x", json=1)
    hearth.admin("PUT", "board/x", json=1)
    assert socket.push()["b"] == {"p": "board/x", "d": 1}
    socket.close()


def test_an_unindexed_query_is_answered_with_the_no_index_warning(launch):
    hearth = launch(rules=RULES)
    hearth.admin("PUT", "board", json={"a": {"score": 2}, "b": {"score": 1}})
    socket = wire(hearth)
    number = socket.request("q", {"p": "/board", "q": {"i": "score", "l": 1, "vf": "l"}, "t": 1, "h": ""})
    push, reply = socket.in_order(2)
    assert push["b"] == {"p": "board", "d": {"b": {"score": 1}}, "t": 1}
    assert reply == {"r": number, "b": {"s": "ok", "d": {"w": ["no_index"]}}}
    # REST keeps Firebase's REST answer for the same query.
    assert hearth.request("GET", "board", params={"orderBy": '"score"', "limitToFirst": "1"}).status_code == 400
    socket.close()


def test_bad_and_expired_tokens_are_refused_with_their_statuses(launch, secret):
    hearth = launch(rules=RULES, flags=[*secret.flags, "--jwt-leeway", "0"])
    socket = wire(hearth)
    assert socket.call("auth", {"cred": "not-a-token"})["s"] == "invalid_token"
    expired = secret.token("ann", lifetime=-30)
    assert socket.call("auth", {"cred": expired})["s"] == "expired_token"
    assert socket.call("gauth", {"cred": hearth.admin_token})["s"] == "ok"
    assert socket.put("/anywhere", 1)["s"] == "ok", "the admin token bypasses the rules"
    # An admin acting as a user obeys the rules as that user.
    assert socket.call("gauth", {"cred": hearth.admin_token, "authvar": {"uid": "bob"}})["s"] == "ok"
    assert socket.put("/users/ann/x", 1)["s"] == "permission_denied"
    assert socket.put("/users/bob/x", 1)["s"] == "ok"
    socket.close()


def test_a_token_that_expires_mid_connection_gets_ac_and_its_listens_are_revoked(launch, secret):
    hearth = launch(rules=RULES, flags=secret.flags)
    socket = wire(hearth)
    assert socket.call("auth", {"cred": secret.token("ann", lifetime=2)})["s"] == "ok"
    assert socket.listen("/users/ann")["s"] == "ok"
    socket.push()
    started = time.time()
    revoked = socket.push(timeout=10)
    assert revoked == {"a": "ac", "b": {"s": "expired_token", "d": "Auth token is expired."}}
    assert time.time() - started < 4, "at exp itself, not after the leeway"
    assert socket.push(timeout=5)["a"] == "c"
    socket.close()


def test_emulator_owner_and_mock_user_tokens(client):
    socket = client()
    assert socket.call("gauth", {"cred": "owner"})["s"] == "ok"
    reply = socket.call("auth", {"cred": mock_user_token("alice")})
    assert reply["s"] == "ok" and reply["d"]["auth"]["uid"] == "alice"
    assert socket.pushes_now(0.5) == [], "a mock token's 1970 expiry does not revoke it"


# -- bad input --------------------------------------------------------------------------------

def test_bad_requests_get_error_replies_and_the_connection_goes_on(client, hearth_server, namespace):
    socket = client()
    assert socket.call("zz", {})["s"] == "invalid_action"
    for body in ({"p": "/a.b", "d": 1}, {"p": "/a", "d": {"$bad": 1}}, {"d": 1}, {"p": 5, "d": 1}):
        reply = socket.call("p", body)
        assert reply["s"] == "invalid_data" and isinstance(reply["d"], str), body
    assert socket.call("m", {"p": "/a", "d": {"x": 1, "x/y": 2}})["s"] == "invalid_data"
    assert socket.call("q", {"p": "/a", "q": {"i": "score", "sp": {"an": "object"}}, "t": 1})["s"] == "invalid_data"
    assert socket.call("q", {"p": "/a", "q": {"i": ".key", "sp": 1}, "t": 2})["s"] == "invalid_data"
    assert rest(hearth_server, namespace, "GET", "a").json() is None, "nothing half-written"
    assert socket.put("/a", 1)["s"] == "ok"


@pytest.mark.parametrize("frame", ["{not json", '{"t":"d"}', '{"t":"d","d":{"a":"p","b":{}}}', "[1,2]", '"text"', "3"])
def test_a_malformed_message_closes_the_connection(client, frame):
    socket = client()
    socket.ws.send(frame)
    if frame == "3":
        for part in ('{"t":"d",', '"d":{"r":1,', '"a":"s","b":{}}}'):
            socket.ws.send(part)
        assert socket.reply(1)["s"] == "ok", "a count frame joins the next frames"
        return
    with pytest.raises(Exception):
        for _ in range(5):
            socket.receive(timeout=5)


def test_the_limits_on_listens_messages_and_streams(hearth_launcher, tmp_path):
    server = hearth_launcher(tmp_path / "data", tmp_path, emulator=True, log_name="limits", extra_args=[
        "--max-listens-per-connection", "2", "--max-realtime-message-bytes", "4096", "--max-streams-per-client", "2"])
    socket = WireClient(server.port, "limits")
    assert socket.listen("/a")["s"] == "ok"
    assert socket.listen("/b")["s"] == "ok"
    refused = socket.listen("/c")
    assert refused["s"] == "too_many_listens" and isinstance(refused["d"], str)
    assert socket.call("n", {"p": "/a"})["s"] == "ok"
    assert socket.listen("/c")["s"] == "ok", "an unlisten frees its place"
    # A WebSocket connection is one of its client's streams: a third is refused.
    second = WireClient(server.port, "limits")
    with pytest.raises(Exception):
        WireClient(server.port, "limits")
    second.close()
    # A message over the limit (joined from its frames) closes the connection; nothing is written.
    # (The server may close it while the frames are still being sent.)
    with pytest.raises(Exception):
        socket.send({"t": "d", "d": {"r": 99, "a": "p", "b": {"p": "/big", "d": "x" * 20000}}})
        for _ in range(10):
            socket.receive(timeout=5)
    third = WireClient(server.port, "limits")
    assert third.call("g", {"p": "/big", "q": {}})["d"] is None
    third.close()


def test_a_reconnect_naming_its_last_session_ends_the_old_one(client, hearth_server, namespace):
    """A client whose old connection is half open (the server still holds it) reconnects with
    `ls=<old session>`: the old session ends then, and its on-disconnect writes run."""
    old = client()
    assert old.put("/presence/fay", True)["s"] == "ok"
    assert old.call("o", {"p": "/presence/fay", "d": None})["s"] == "ok"
    new = client(params=f"&ls={old.hello['d']['d']['s']}")
    deadline = time.monotonic() + 5
    while rest(hearth_server, namespace, "GET", "presence/fay").json() is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rest(hearth_server, namespace, "GET", "presence/fay").json() is None
    assert new.call("s", {"c": {}})["s"] == "ok"


def test_an_upgrade_with_a_malformed_query_string_is_refused(hearth_server):
    with pytest.raises(Exception, match="400"):
        WireClient(hearth_server.port, "bad%zz")


@pytest.mark.parametrize("stop", ["kill -9", "SIGTERM"])
def test_on_disconnect_writes_survive_a_crash_or_a_restart(hearth_launcher, tmp_path, stop):
    """Registrations are in the session journal before their `ok`: a server killed while the
    client is still connected makes them when it starts again (Firebase does not promise this)."""
    data = tmp_path / "data"
    server = hearth_launcher(data, tmp_path, emulator=True, log_name="first")
    socket = WireClient(server.port, "presence")
    assert socket.put("/presence/gus", {"online": True, "since": 1})["s"] == "ok"
    assert socket.call("o", {"p": "/presence/gus", "d": None})["s"] == "ok"
    assert socket.call("om", {"p": "/status/gus", "d": {"state": "offline", "at": {".sv": "timestamp"}}})["s"] == "ok"
    assert socket.call("o", {"p": "/presence/hal", "d": True})["s"] == "ok"
    assert socket.call("oc", {"p": "/presence/hal", "d": None})["s"] == "ok"
    if stop == "kill -9":
        server.process.kill()
    else:
        server.process.terminate()
    server.process.wait(timeout=15)
    started = int(time.time() * 1000)
    restarted = hearth_launcher(data, tmp_path, emulator=True, log_name="second")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if rest(restarted, "presence", "GET", "status/gus").json() is not None:
            break
        time.sleep(0.1)
    assert rest(restarted, "presence", "GET", "presence").json() is None, "the presence entry was removed"
    status = rest(restarted, "presence", "GET", "status/gus").json()
    assert status["state"] == "offline"
    if stop == "kill -9":
        assert status["at"] >= started, "server values are resolved when the writes are made"
    # Made once: a second restart changes nothing.
    rest(restarted, "presence", "PUT", "presence/gus", json=True)
    restarted.process.terminate()
    restarted.process.wait(timeout=15)
    third = hearth_launcher(data, tmp_path, emulator=True, log_name="third")
    time.sleep(0.5)
    assert rest(third, "presence", "GET", "presence/gus").json() is True
