"""Realtime streaming: Firebase's server-sent events (`Accept: text/event-stream`).

A `GET <path>.json` that asks for `text/event-stream` stays open. The server first sends
`event: put` with `{"path":"/","data":<the whole value>}`, then one event per write that
touches the location: a `put` (replace the value at `path`, relative to the listened
location) or a `patch` (replace each named child below `path`). Hearth gives every event an
`id:` (the namespace's change sequence) and honours `Last-Event-ID` on reconnects. It also
sends `keep-alive` (data `null`), `cancel` when the rules stop allowing the read, and
`auth_revoked` (raw data `credential is no longer valid`, which the Python SDK compares
verbatim) when the caller's token expires.

What is covered:

* firebase-admin's `Reference.listen`: the `event_type`, `path` and `data` of the callbacks
  for writes at, above and below the listened location (the SDK drops keep-alives).
* The raw wire format: event shapes for PUT/PATCH/POST/DELETE at, above and below the
  location; no event when a write above leaves the location unchanged; increasing ids;
  compact JSON data that starts with `{"path":` (the Go SDK byte-matches that prefix).
* `keep-alive`, `cancel` on a rules upload, `auth_revoked` on token expiry.
* `Last-Event-ID` resumes: exactly the missed events, or a fresh `put` when the gap is no
  longer in the server's history (`--stream-history`).
* Live queries (`orderBy` + `limitToLast` on the stream URL): the events keep a client's
  copy equal to the query's answer through random writes.
* Backpressure: a client that stops reading is resynchronised with one fresh `put` when its
  outbox (`--stream-outbox-bytes`) overflows, while a healthy client misses nothing.
* Clean-up of disconnected streams (`/.inspect/streams.json`), 401 on open for a denied
  read, and the CORS header on the stream response.

The SSE client used here is a small one written on top of `requests` (`stream=True`) with a
background thread that parses frames into a queue, plus a raw-socket variant for the client
that must not read. Both only ever contact 127.0.0.1.
"""

from __future__ import annotations

import codecs
import copy
import json
import os
import queue
import random
import re
import secrets
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import firebase_admin
import jwt
import pytest
import requests
from firebase_admin import db

from compat_helpers import HOST, HTTP_TIMEOUT_SECONDS, EmulatorOnlyCredential, assert_push_id

EVENT_TIMEOUT_SECONDS = 15  # generous: the machine may be busy
POLL_TIMEOUT_SECONDS = 15
OWNER = "owner"  # the emulator's admin bearer token
PERMISSION_DENIED = {"error": "Permission denied"}
AUTH_REVOKED_DATA = "credential is no longer valid"
# A compact `put`/`patch` data line: `{"path":"<rel>","data":...`, in that order.
COMPACT_DATA_PREFIX = re.compile(r'^\{"path":"(/|(/[^/"]+)+)","data":')

# --------------------------------------------------------------------------------------
# A small SSE client
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SSEEvent:
    """One parsed server-sent event: its `event:` name, raw `data:` text and `id:`."""

    event: str
    data: str
    id: str | None

    @property
    def json(self) -> Any:
        """The data, decoded as JSON."""
        return json.loads(self.data)

    @property
    def path(self) -> str:
        """The `path` of a `put`/`patch` event."""
        return self.json["path"]

    @property
    def payload(self) -> Any:
        """The `data` of a `put`/`patch` event."""
        return self.json["data"]

    @property
    def sequence(self) -> int:
        """The `id:` as an integer (asserting there is one)."""
        assert self.id is not None, f"event without an id: {self}"
        return int(self.id)

    def brief(self) -> str:
        return f"{self.event} id={self.id} {self.data[:200]}"


class _Closed:
    """Queued when the server ends the stream (or the connection breaks)."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error

    def __repr__(self) -> str:
        return f"<stream closed{': ' + repr(self.error) if self.error else ''}>"


class SSEParser:
    """Turns a byte stream into `SSEEvent`s: `field: value` lines, frames end at a blank
    line, `data:` lines are joined with newlines, lines starting with `:` are comments."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._pending = ""
        self._event: str | None = None
        self._data: list[str] = []
        self._id: str | None = None
        self._has_fields = False

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        self._pending += self._decoder.decode(chunk)
        events = []
        while True:
            newline = self._pending.find("\n")
            if newline < 0:
                return events
            line = self._pending[:newline].rstrip("\r")
            self._pending = self._pending[newline + 1:]
            if line == "":
                if self._has_fields:
                    events.append(SSEEvent(self._event or "message", "\n".join(self._data), self._id))
                self._event, self._data, self._id, self._has_fields = None, [], None, False
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            self._has_fields = True
            if name == "event":
                self._event = value
            elif name == "data":
                self._data.append(value)
            elif name == "id":
                self._id = value


class EventStream:
    """The receiving end of one stream: a reader thread queues parsed events, and the test
    takes them with `next_event`. Subclasses open the connection and implement `_read`."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.events: queue.Queue = queue.Queue()
        self.received: list[SSEEvent] = []  # everything taken by the test, for messages
        self.closed = False
        self._parser = SSEParser()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Starts the reader thread."""
        self._thread = threading.Thread(target=self._run, name=f"sse-{self.label}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        error = None
        try:
            for chunk in self._read():
                for event in self._parser.feed(chunk):
                    self.events.put(event)
        except BaseException as exc:  # noqa: BLE001 - reported through the queue
            error = exc
        self.events.put(_Closed(error))

    def _read(self) -> Iterator[bytes]:
        raise NotImplementedError

    def _history(self) -> str:
        tail = self.received[-10:]
        return f"{self.label}: last events taken: " + ("; ".join(e.brief() for e in tail) or "none")

    def next_item(self, timeout: float = EVENT_TIMEOUT_SECONDS, *, keep_alives: bool = False):
        """The next event (or `_Closed`), skipping keep-alives unless asked for them."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                item = self.events.get(timeout=max(remaining, 0.001))
            except queue.Empty:
                raise AssertionError(f"no event within {timeout:.0f}s ({self._history()})") from None
            if isinstance(item, _Closed):
                self.closed = True
                self.events.put(item)  # stays closed for later calls
                return item
            if item.event == "keep-alive" and not keep_alives:
                continue
            self.received.append(item)
            return item

    def next_event(self, timeout: float = EVENT_TIMEOUT_SECONDS, *, keep_alives: bool = False) -> SSEEvent:
        """The next event, failing if none arrives within `timeout` or the stream ended."""
        item = self.next_item(timeout, keep_alives=keep_alives)
        assert not isinstance(item, _Closed), f"stream ended unexpectedly: {item!r} ({self._history()})"
        return item

    def expect(self, event: str, path: str, data: Any, timeout: float = EVENT_TIMEOUT_SECONDS) -> SSEEvent:
        """Takes the next event and asserts its name, path and data."""
        received = self.next_event(timeout)
        actual = (received.event, received.path, received.payload)
        assert actual == (event, path, data), (
            f"{self.label}: expected {(event, path, data)!r}, got {actual!r} ({self._history()})"
        )
        return received

    def wait_closed(self, timeout: float = EVENT_TIMEOUT_SECONDS) -> list[SSEEvent]:
        """Waits for the server to end the stream; returns the events that came before."""
        deadline = time.monotonic() + timeout
        before = []
        while True:
            item = self.next_item(max(deadline - time.monotonic(), 0.001))
            if isinstance(item, _Closed):
                return before
            before.append(item)

    def close(self) -> None:
        raise NotImplementedError


def _shutdown(sock: socket.socket | None) -> None:
    """Wakes a thread blocked reading `sock` (closing the descriptor alone does not)."""
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class SSEStream(EventStream):
    """A stream opened with `requests` (`stream=True`)."""

    def __init__(self, url: str, *, params: dict | None = None, token: str | None = OWNER,
                 headers: dict | None = None, label: str = "stream") -> None:
        super().__init__(label)
        self.session = requests.Session()
        self.session.trust_env = False
        all_headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache", **(headers or {})}
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        # No read timeout: a quiet stream is normal; `close` unblocks the reader.
        self.response = self.session.get(url, params=params, headers=all_headers, stream=True,
                                         timeout=(HTTP_TIMEOUT_SECONDS, None))
        assert self.response.status_code == 200, (
            f"{label}: stream open answered {self.response.status_code}: {self.response.text[:300]!r}"
        )
        content_type = self.response.headers.get("Content-Type", "")
        assert content_type.startswith("text/event-stream"), f"{label}: Content-Type {content_type!r}"
        self.start()

    def _read(self) -> Iterator[bytes]:
        # With chunked transfer encoding, `chunk_size=None` yields each chunk as it arrives.
        yield from self.response.iter_content(chunk_size=None)

    def close(self) -> None:
        """Closes the connection and waits for the reader thread."""
        connection = getattr(self.response.raw, "connection", None)
        _shutdown(getattr(connection, "sock", None))
        self.response.close()
        self.session.close()
        if self._thread is not None:
            self._thread.join(timeout=10)


class RawSocketStream(EventStream):
    """A stream over a plain socket with a tiny receive buffer. The request is sent at once,
    but nothing is read until `start()`: until then the client is a stalled reader."""

    def __init__(self, port: int, target: str, *, token: str | None = OWNER,
                 receive_buffer: int = 4096, label: str = "raw stream") -> None:
        super().__init__(label)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(HTTP_TIMEOUT_SECONDS)
        self.sock.connect((HOST, port))
        lines = [f"GET {target} HTTP/1.1", f"Host: {HOST}:{port}", "Accept: text/event-stream",
                 "Cache-Control: no-cache"]
        if token is not None:
            lines.append(f"Authorization: Bearer {token}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("ascii"))
        self.status: int | None = None
        self.headers: dict[str, str] = {}

    def start(self) -> None:
        self.sock.settimeout(None)
        super().start()

    def _read(self) -> Iterator[bytes]:
        reader = self.sock.makefile("rb")
        status_line = reader.readline().decode("latin-1")
        self.status = int(status_line.split()[1])
        while (line := reader.readline().decode("latin-1").rstrip("\r\n")):
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        assert self.status == 200, f"{self.label}: stream open answered {status_line!r}"
        if self.headers.get("transfer-encoding", "").lower() != "chunked":
            while chunk := reader.read1(65536):
                yield chunk
            return
        while True:
            size_line = reader.readline()
            if not size_line:
                return
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                return
            chunk = reader.read(size)
            reader.readline()  # the CRLF after the chunk
            yield chunk

    def close(self) -> None:
        _shutdown(self.sock)
        self.sock.close()
        if self._thread is not None:
            self._thread.join(timeout=10)


# --------------------------------------------------------------------------------------
# Local copies and other helpers
# --------------------------------------------------------------------------------------


def _segments(path: str) -> list[str]:
    return [segment for segment in path.split("/") if segment]


def set_at(tree: Any, path: str, value: Any) -> Any:
    """`tree` with the value at `path` replaced by `value`, pruned like Firebase's data
    (null children removed, empty objects become null)."""
    segments = _segments(path)
    if not segments:
        return copy.deepcopy(value)
    node = dict(tree) if isinstance(tree, dict) else {}
    child = set_at(node.get(segments[0]), "/".join(segments[1:]), value)
    if child is None:
        node.pop(segments[0], None)
    else:
        node[segments[0]] = child
    return node or None


def apply_event(tree: Any, event: SSEEvent) -> Any:
    """What a client's copy becomes after `event` (`put` replaces, `patch` merges)."""
    if event.event == "put":
        return set_at(tree, event.path, event.payload)
    if event.event == "patch":
        for key, value in event.payload.items():
            tree = set_at(tree, f"{event.path}/{key}", value)
        return tree
    raise AssertionError(f"not a data event: {event.brief()}")


def poll_until(read: Callable[[], Any], accept: Callable[[Any], bool], what: str,
               timeout: float = POLL_TIMEOUT_SECONDS) -> Any:
    """Calls `read` until `accept` holds for its result; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    value = read()
    while not accept(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still {value!r} after {timeout:.0f}s")
        time.sleep(0.05)
        value = read()
    return value


class Rest:
    """Proxy-free REST access to one namespace of a server, with a bearer token."""

    def __init__(self, base_url: str, namespace: str, token: str | None = OWNER) -> None:
        self.base_url = base_url
        self.namespace = namespace
        self.token = token
        self.session = requests.Session()
        self.session.trust_env = False

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.strip('/')}.json"

    def request(self, method: str, path: str, *, token: Any = "default", params: dict | None = None,
                **kwargs: Any) -> requests.Response:
        token = self.token if token == "default" else token
        headers = dict(kwargs.pop("headers", None) or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        kwargs.setdefault("timeout", HTTP_TIMEOUT_SECONDS)
        return self.session.request(method, self.url(path), params={"ns": self.namespace, **(params or {})},
                                    headers=headers, **kwargs)

    def write(self, method: str, path: str, value: Any = None) -> requests.Response:
        """A PUT/PATCH/POST (with a JSON body) or DELETE that must succeed."""
        body = {} if method == "DELETE" else {"json": value}
        response = self.request(method, path, **body)
        assert response.status_code == 200, f"{method} {path}: {response.status_code} {response.text[:300]}"
        return response

    def get(self, path: str, params: dict | None = None) -> Any:
        response = self.request("GET", path, params=params)
        assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text[:300]}"
        return response.json()

    def stream(self, path: str, *, params: dict | None = None, token: Any = "default",
               headers: dict | None = None, label: str | None = None) -> SSEStream:
        """Opens a stream of `path` (with this client's token unless another is given)."""
        token = self.token if token == "default" else token
        return SSEStream(self.url(path), params={"ns": self.namespace, **(params or {})}, token=token,
                         headers=headers, label=label or f"stream {path}")

    def close(self) -> None:
        self.session.close()


@pytest.fixture
def rest(hearth_server, namespace) -> Iterator[Rest]:
    """Owner (admin) REST access to this test's namespace on the session server."""
    client = Rest(hearth_server.base_url, namespace)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def streams() -> Iterator[list[EventStream]]:
    """A list the test appends its streams to; every one is closed when the test ends."""
    opened: list[EventStream] = []
    try:
        yield opened
    finally:
        for stream in opened:
            try:
                stream.close()
            except Exception:  # noqa: BLE001 - best-effort clean-up
                pass


@pytest.fixture
def launch(hearth_launcher, tmp_path) -> Callable[..., Any]:
    """Starts a server for this test: ``launch(*flags, emulator=True, rules=None)``; `rules`
    (a dict) is written to a file and passed with ``--rules``."""
    counter = iter(range(1, 1000))
    log_dir = tmp_path / "logs"
    log_dir.mkdir()

    def start(*flags: str, emulator: bool = True, rules: dict | None = None):
        number = next(counter)
        # Streams of namespaces the tests name: anyone may create one (namespace creation
        # has tests of its own, in test_public_webhooks.py).
        args = ["--create-namespaces", *flags]
        if rules is not None:
            rules_path = tmp_path / f"rules-{number}.json"
            rules_path.write_text(json.dumps(rules, indent=2))
            args += ["--rules", str(rules_path)]
        return hearth_launcher(tmp_path / f"data-{number}", log_dir, emulator=emulator,
                               extra_args=args, log_name=f"hearth-{number}")

    return start


def hs256_token(secret: str, subject: str, lifetime: int) -> str:
    """A user token for `subject` that expires `lifetime` seconds from now."""
    now = int(time.time())
    return jwt.encode({"sub": subject, "iat": now, "exp": now + lifetime}, secret, algorithm="HS256")


# --------------------------------------------------------------------------------------
# 1. The official SDK
# --------------------------------------------------------------------------------------


# When `ListenerRegistration.close()` closes the response under the SDK's reader thread, that
# thread wakes at the next keep-alive and dies with an AttributeError inside the SDK's
# `_sseclient` (it reads from the closed response). That is the SDK's own behaviour.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_sdk_listen_sees_firebase_events(launch):
    """`Reference.listen` on `/x`: the initial `put` of the whole value, then the SDK's
    `Event`s (`event_type`, `path`, `data`) for `set`/`update`/`push`/`delete` at, above and
    below the location; writes elsewhere give no callback; `close()` ends the listener.

    The server runs with 0.2 s keep-alives, which the SDK must drop (their data is `null`)
    and which let `close()` return promptly (the SDK's reader only notices the closed
    connection when something arrives)."""
    server = launch("--keep-alive-seconds", "0.2")
    namespace = f"sdk-listen-{uuid.uuid4().hex[:8]}"
    app = firebase_admin.initialize_app(
        credential=EmulatorOnlyCredential(),
        options={"databaseURL": server.database_url(namespace), "httpTimeout": HTTP_TIMEOUT_SECONDS},
        name=f"streaming-{uuid.uuid4().hex[:8]}",
    )
    received: queue.Queue = queue.Queue()
    registration = None
    try:
        root = db.reference("/", app=app)
        x = root.child("x")
        x.set({"a": 1, "b": {"c": 2}})
        registration = x.listen(lambda event: received.put((event.event_type, event.path, event.data)))

        def expect(event_type: str, path: str, data: Any) -> None:
            try:
                actual = received.get(timeout=EVENT_TIMEOUT_SECONDS)
            except queue.Empty:
                raise AssertionError(f"no callback for {(event_type, path, data)!r}") from None
            assert actual == (event_type, path, data)

        expect("put", "/", {"a": 1, "b": {"c": 2}})

        x.child("b/c").set(3)  # below
        expect("put", "/b/c", 3)

        x.set({"a": 2, "b": {"c": 3}})  # at
        expect("put", "/", {"a": 2, "b": {"c": 3}})

        x.update({"a": 3, "b/d": 4})  # an update at the location
        expect("patch", "/", {"a": 3, "b/d": 4})

        x.child("b").update({"c": 5})  # an update below
        expect("patch", "/b", {"c": 5})

        root.update({"x/a": 6, "elsewhere": True})  # a multi-path update above
        expect("patch", "/", {"a": 6})

        pushed = x.child("list").push("v")
        assert_push_id(pushed.key)
        expect("put", f"/list/{pushed.key}", "v")

        x.child("a").delete()
        expect("put", "/a", None)

        root.set({"x": {"z": 1}, "elsewhere": False})  # a set above: only x's part
        expect("put", "/", {"z": 1})

        root.child("elsewhere").set("unrelated")  # not x: no callback
        x.delete()
        expect("put", "/", None)

        closer = threading.Thread(target=registration.close, daemon=True)
        closer.start()
        closer.join(timeout=EVENT_TIMEOUT_SECONDS)
        assert not closer.is_alive(), "ListenerRegistration.close() did not return"
        registration = None
        assert received.empty(), f"unexpected callbacks: {list(received.queue)!r}"
    finally:
        if registration is not None:
            threading.Thread(target=registration.close, daemon=True).start()
        firebase_admin.delete_app(app)


# --------------------------------------------------------------------------------------
# 2. Raw event shapes
# --------------------------------------------------------------------------------------


def test_raw_events_for_writes_at_above_and_below(rest, streams):
    """The SSE frames for each kind of write, relative to a stream of `/x`:

    * PUT below → `put` at the relative path; PUT at → `put` `/` with the new value;
    * PUT above → `put` `/` with only x's part, and no event at all when x did not change
      (checked by making the next write one that does, and seeing it is the next event);
    * PATCH at, below and above (multi-path) → one `patch` whose keys are relative to the
      PATCH location (or to `/x` when the PATCH is above it);
    * POST below → `put` at `/<pushid>`; DELETE → `put` with `null`;
    * writes outside `/x` → nothing.

    Every frame has `event:`, compact `data:` starting with `{"path":` and an `id:`; the ids
    increase strictly. The first frame is the initial `put` of the whole value."""
    rest.write("PUT", "", {"x": {"a": 1, "b": {"c": 2}}, "other": 0})
    stream = rest.stream("x")
    streams.append(stream)

    first = stream.expect("put", "/", {"a": 1, "b": {"c": 2}})

    rest.write("PUT", "x/b/c", 3)
    stream.expect("put", "/b/c", 3)

    rest.write("PUT", "x", {"a": 2})
    stream.expect("put", "/", {"a": 2})

    # Above, leaving x unchanged: no event (PUT of the root, then PATCH of the root).
    rest.write("PUT", "", {"x": {"a": 2}, "other": 1})
    rest.write("PATCH", "", {"x": {"a": 2}, "other": 2})
    rest.write("PUT", "other", 3)  # a sibling: no event either
    rest.write("PUT", "x/a", 3)
    stream.expect("put", "/a", 3)

    # Above, changing x: only x's part is sent.
    rest.write("PUT", "", {"x": {"a": 4, "n": {"m": 1}}, "other": 4})
    stream.expect("put", "/", {"a": 4, "n": {"m": 1}})

    rest.write("PATCH", "x", {"b/c": 4, "d": 1})  # at
    stream.expect("patch", "/", {"b/c": 4, "d": 1})

    rest.write("PATCH", "x/n", {"m": 2, "o": 3})  # below
    stream.expect("patch", "/n", {"m": 2, "o": 3})

    rest.write("PATCH", "", {"x/a": 5, "other": 5})  # above, multi-path
    stream.expect("patch", "/", {"a": 5})

    name = rest.write("POST", "x/list", "pushed").json()["name"]
    assert_push_id(name)
    stream.expect("put", f"/list/{name}", "pushed")

    rest.write("DELETE", "x/d")
    stream.expect("put", "/d", None)

    rest.write("DELETE", "x")
    stream.expect("put", "/", None)

    events = stream.received
    assert events[0] is first
    ids = [event.sequence for event in events]
    assert ids == sorted(set(ids)), f"ids not strictly increasing: {ids}"
    for event in events:
        assert COMPACT_DATA_PREFIX.match(event.data), f"data line not compact path-first JSON: {event.data!r}"
        assert " " not in event.data, f"data line not compact: {event.data!r}"
        assert list(event.json) == ["path", "data"], event.data


def test_stream_of_missing_location_starts_with_null_and_root_stream_sees_everything(rest, streams):
    """A stream of a location with no data starts with `put` `/` `null`; a stream of the
    root sees writes anywhere at their full path."""
    empty = rest.stream("nothing/here")
    streams.append(empty)
    empty.expect("put", "/", None)

    whole = rest.stream("")
    streams.append(whole)
    whole.expect("put", "/", None)
    rest.write("PUT", "deep/er/still", {"v": True})
    whole.expect("put", "/deep/er/still", {"v": True})
    # That write was not below `nothing/here`: the next event `empty` gets is this one's.
    rest.write("PUT", "nothing/here", 1)
    empty.expect("put", "/", 1)
    whole.expect("put", "/nothing/here", 1)


def test_events_carry_resolved_server_values_and_arrays_like_get(rest, streams):
    """Event data is what a GET would answer: `{".sv": ...}` placeholders arrive resolved
    (a timestamp, an incremented number), and array-like objects arrive as JSON arrays,
    as Firebase renders them."""
    rest.write("PUT", "x", ["a", "b"])
    stream = rest.stream("x")
    streams.append(stream)
    stream.expect("put", "/", ["a", "b"])

    rest.write("PUT", "x/2", "c")
    stream.expect("put", "/2", "c")

    before = int(time.time() * 1000)
    rest.write("PUT", "x/3", {".sv": "timestamp"})
    stamp = stream.next_event()
    assert (stamp.event, stamp.path) == ("put", "/3"), stamp.brief()
    assert isinstance(stamp.payload, int) and abs(stamp.payload - before) < 60_000, stamp.brief()
    assert stamp.payload == rest.get("x/3")

    rest.write("PATCH", "x", {"4": {".sv": {"increment": 2}}})
    stream.expect("patch", "/", {"4": 2})

    rest.write("PUT", "", {"x": {"0": 1, "1": 2}})
    stream.expect("put", "/", [1, 2])
    assert rest.get("x") == [1, 2]


# --------------------------------------------------------------------------------------
# 3. keep-alive
# --------------------------------------------------------------------------------------


def test_keep_alive_events_arrive(launch, streams):
    """With `--keep-alive-seconds 0.2`, an idle stream receives `keep-alive` events with
    data `null` after its initial `put`."""
    server = launch("--keep-alive-seconds", "0.2")
    rest = Rest(server.base_url, "keepalive")
    stream = rest.stream("room")
    streams.append(stream)
    stream.expect("put", "/", None)
    started = time.monotonic()
    for _ in range(3):
        event = stream.next_event(timeout=EVENT_TIMEOUT_SECONDS, keep_alives=True)
        assert event.event == "keep-alive", event.brief()
        assert event.data == "null", event.brief()
    # Three keep-alives at 0.2 s take about 0.6 s; allow a lot for a busy machine.
    assert time.monotonic() - started < EVENT_TIMEOUT_SECONDS
    rest.close()


# --------------------------------------------------------------------------------------
# 4. cancel
# --------------------------------------------------------------------------------------


def test_rules_change_cancels_streams_that_lose_read_access(launch, streams):
    """Anonymous streams of `/room/secret` and `/room/public` are open under rules that let
    anyone read `/room`. The admin uploads rules that only keep `/room/public` readable:
    the secret stream gets `event: cancel` with data `"Permission denied"` and ends; the
    public stream and an admin stream of the secret location keep receiving events."""
    admin_token = secrets.token_urlsafe(24)
    server = launch(f"--admin-token={admin_token}", emulator=False,
                    rules={"rules": {"room": {".read": True}}})
    admin = Rest(server.base_url, "cancel-compat", token=admin_token)
    admin.write("PUT", "room", {"secret": {"n": 0}, "public": {"n": 0}})

    secret = admin.stream("room/secret", token=None, label="anonymous secret")
    public = admin.stream("room/public", token=None, label="anonymous public")
    admin_secret = admin.stream("room/secret", label="admin secret")
    streams.extend([secret, public, admin_secret])
    for stream in (secret, public, admin_secret):
        stream.expect("put", "/", {"n": 0})

    new_rules = {"rules": {"room": {"public": {".read": True}}}}
    response = admin.session.put(f"{server.base_url}/.settings/rules.json", params={"ns": "cancel-compat"},
                                 headers={"Authorization": f"Bearer {admin_token}"},
                                 data=json.dumps(new_rules), timeout=HTTP_TIMEOUT_SECONDS)
    assert response.status_code == 200, response.text

    cancel = secret.next_event()
    assert (cancel.event, cancel.data) == ("cancel", '"Permission denied"'), cancel.brief()
    assert secret.wait_closed() == [], "events after cancel"

    admin.write("PUT", "room/secret/n", 1)
    admin.write("PUT", "room/public/n", 1)
    admin_secret.expect("put", "/n", 1)
    public.expect("put", "/n", 1)
    admin.close()


# --------------------------------------------------------------------------------------
# 5. auth_revoked
# --------------------------------------------------------------------------------------


def test_expired_token_revokes_the_stream(launch, streams, tmp_path):
    """A stream opened with a user token that expires in about 2 s (`--jwt-leeway 0`)
    receives `event: auth_revoked` with the raw data `credential is no longer valid` (what
    the Python SDK compares against) soon after the expiry, and then ends. A stream with a
    token valid for an hour (sent as `?auth=`) keeps receiving events."""
    secret = secrets.token_hex(32)
    secret_path = tmp_path / "jwt-secret"
    secret_path.write_text(secret + "\n")
    admin_token = secrets.token_urlsafe(24)
    server = launch(f"--admin-token={admin_token}", "--jwt-secret-file", str(secret_path),
                    "--jwt-leeway", "0", emulator=False, rules={"rules": {".read": "auth != null"}})
    admin = Rest(server.base_url, "revoke-compat", token=admin_token)
    admin.write("PUT", "inbox", {"n": 0})

    short = hs256_token(secret, "alice", lifetime=2)
    opened = time.monotonic()
    expiring = admin.stream("inbox", token=short, label="expiring token")
    # The long-lived token travels as `?auth=`, the way Firebase's REST docs stream.
    lasting = admin.stream("inbox", token=None, params={"auth": hs256_token(secret, "bob", lifetime=3600)},
                           label="lasting token")
    streams.extend([expiring, lasting])
    expiring.expect("put", "/", {"n": 0})
    lasting.expect("put", "/", {"n": 0})

    revoked = expiring.next_event(timeout=10)
    elapsed = time.monotonic() - opened
    assert (revoked.event, revoked.data) == ("auth_revoked", AUTH_REVOKED_DATA), revoked.brief()
    assert elapsed > 0.5, f"auth_revoked after {elapsed:.2f}s, before the token expired"
    assert expiring.wait_closed() == [], "events after auth_revoked"

    admin.write("PUT", "inbox/n", 1)
    lasting.expect("put", "/n", 1)

    # The expired token can no longer open a stream at all.
    response = admin.request("GET", "inbox", token=short, headers={"Accept": "text/event-stream"})
    assert response.status_code == 401, response.text
    admin.close()


# --------------------------------------------------------------------------------------
# 6. Last-Event-ID
# --------------------------------------------------------------------------------------


def _resume_after_writes(rest: Rest, streams: list, writes: int) -> tuple[SSEEvent, SSEStream, dict]:
    """Opens a stream of `log`, takes its initial `put`, closes it, makes `writes` PUTs to
    `log/k<i>` and reconnects with `Last-Event-ID`. Returns the first stream's initial event,
    the new stream and the final value."""
    rest.write("PUT", "log", {"start": True})
    first = rest.stream("log", label="before")
    streams.append(first)
    initial = first.expect("put", "/", {"start": True})
    first.close()
    value = {"start": True}
    for i in range(writes):
        rest.write("PUT", f"log/k{i:03d}", i)
        value[f"k{i:03d}"] = i
    resumed = rest.stream("log", headers={"Last-Event-ID": initial.id}, label="resumed")
    streams.append(resumed)
    return initial, resumed, value


def test_last_event_id_resumes_with_exactly_the_missed_events(rest, streams):
    """After reconnecting with `Last-Event-ID: <id of the last event seen>`, the stream sends
    exactly the 100 events written meanwhile (consecutive ids, no duplicates, nothing
    missing, no initial `put`), then live events."""
    initial, resumed, _ = _resume_after_writes(rest, streams, 100)
    base = initial.sequence
    for i in range(100):
        event = resumed.expect("put", f"/k{i:03d}", i)
        assert event.sequence == base + 1 + i, f"event {i}: id {event.id}, expected {base + 1 + i}"
    rest.write("PUT", "log/live", "yes")
    live = resumed.expect("put", "/live", "yes")
    assert live.sequence == base + 101


def test_last_event_id_beyond_the_history_gets_a_fresh_put(launch, streams):
    """With `--stream-history 50`, a reconnect that missed 100 changes cannot be replayed:
    the stream starts with a fresh `put` of the whole value instead, then live events."""
    server = launch("--stream-history", "50")
    rest = Rest(server.base_url, "history")
    initial, resumed, value = _resume_after_writes(rest, streams, 100)
    fresh = resumed.expect("put", "/", value)
    assert fresh.sequence == initial.sequence + 100
    rest.write("PUT", "log/live", "yes")
    live = resumed.expect("put", "/live", "yes")
    assert live.sequence == fresh.sequence + 1

    # A gap that is still in the history is replayed exactly.
    last = live.id
    resumed.close()
    for i in range(30):
        rest.write("PUT", f"log/again{i:02d}", i)
    again = rest.stream("log", headers={"Last-Event-ID": last}, label="resumed within history")
    streams.append(again)
    for i in range(30):
        event = again.expect("put", f"/again{i:02d}", i)
        assert event.sequence == int(last) + 1 + i
    rest.close()


# --------------------------------------------------------------------------------------
# 7. Live queries
# --------------------------------------------------------------------------------------

QUERY_SEED = int(os.environ.get("HEARTH_STREAM_SEED", "20240611"))
QUERY = {"orderBy": '"score"', "limitToLast": "5"}


def test_live_query_events_keep_the_client_copy_equal_to_the_query(rest, streams):
    """A stream of `scores?orderBy="score"&limitToLast=5`: the first `put` is the query's
    answer; after each of 80 random (seeded) writes that move children into and out of the
    window, change them in place, delete and add children, the received events (`patch`
    events at `/`, null for a child that left) applied to a local copy give exactly what a
    fresh GET of the same query answers. HEARTH_STREAM_SEED=<n> picks another seed."""
    rng = random.Random(QUERY_SEED)
    keys = [f"p{i:02d}" for i in range(14)]
    data = {key: {"score": rng.randrange(100), "name": key} for key in keys[:10]}
    rest.write("PUT", "scores", data)

    stream = rest.stream("scores", params=QUERY, label="live query")
    streams.append(stream)
    first = stream.next_event()
    assert (first.event, first.path) == ("put", "/"), first.brief()
    local = first.payload
    assert local == rest.get("scores", QUERY), "initial put is not the query's answer"
    last_id = first.sequence
    entered = left = 0

    for step in range(80):
        key = rng.choice(keys)
        kind = rng.choice(["score", "score", "score", "rename", "delete", "replace", "patch", "noscore"])
        if kind == "score":
            rest.write("PUT", f"scores/{key}/score", rng.randrange(100))
        elif kind == "rename":
            rest.write("PUT", f"scores/{key}/name", f"n{step}")
        elif kind == "delete":
            rest.write("DELETE", f"scores/{key}")
        elif kind == "replace":
            rest.write("PUT", f"scores/{key}", {"score": rng.randrange(100), "name": f"r{step}"})
        elif kind == "patch":
            other = rng.choice(keys)
            rest.write("PATCH", "scores", {f"{key}/score": rng.randrange(100), f"{other}/score": rng.randrange(100)})
        else:
            rest.write("PUT", f"scores/{key}", {"name": f"no score {step}"})
        expected = rest.get("scores", QUERY)
        deadline = time.monotonic() + EVENT_TIMEOUT_SECONDS
        while local != expected:
            remaining = deadline - time.monotonic()
            assert remaining > 0, (f"step {step} ({kind} {key}, seed {QUERY_SEED}): client copy "
                                   f"{local!r} != query answer {expected!r}")
            event = stream.next_event(timeout=remaining)
            assert (event.event, event.path) == ("patch", "/"), f"step {step}: {event.brief()}"
            assert event.sequence > last_id, f"step {step}: id {event.id} after {last_id}"
            last_id = event.sequence
            entered += sum(1 for child, value in event.payload.items() if value is not None and child not in (local or {}))
            left += sum(1 for value in event.payload.values() if value is None)
            local = apply_event(local, event)
        assert local is None or len(local) <= 5
    # The seed must actually move children across the window's edge, both ways.
    assert entered > 0 and left > 0, f"seed {QUERY_SEED}: {entered} children entered, {left} left"

    # Nothing left over: a final marker write that enters the window is the next event.
    rest.write("PUT", "scores/zz", {"score": 1000, "name": "marker"})
    marker = stream.next_event()
    assert (marker.event, marker.path) == ("patch", "/"), marker.brief()
    assert marker.payload.get("zz") == {"score": 1000, "name": "marker"}, marker.brief()
    assert apply_event(local, marker) == rest.get("scores", QUERY)


# --------------------------------------------------------------------------------------
# 8. Backpressure
# --------------------------------------------------------------------------------------

OUTBOX_BYTES = 4096
BACKPRESSURE_KEYS = 16
BACKPRESSURE_VALUE_CHARS = 1000  # frames of about 1.1 KB: three fit in the outbox


def _stall_volume_bytes() -> int:
    """How many bytes of events should overflow a stalled stream's outbox: the kernel
    buffers between the server and a client that stops reading take up to about the largest
    TCP send buffer (`tcp_wmem` max, 4 MiB by default) before the server's writes block."""
    try:
        largest_send_buffer = int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    except (OSError, ValueError, IndexError):
        largest_send_buffer = 4 << 20
    return min(int(largest_send_buffer * 1.25), 16 << 20) + (512 << 10)


def test_stalled_reader_is_resynchronised_and_healthy_reader_misses_nothing(launch, streams):
    """Server with `--stream-outbox-bytes 4096`. A stalled client (raw socket with a tiny
    receive buffer that sends its request and then reads nothing) and a healthy client both
    stream `/feed` while enough 1 KB writes are made to fill every buffer in between:

    * the healthy client receives every write's `put`, in order, with consecutive ids;
    * when the stalled client starts reading, it first gets a prefix of the same events, then
      one `put` at `/` whose data is the value at that event's id (its missed events were
      replaced by this fresh value), then every later event: its copy ends equal to a GET.
    """
    server = launch("--stream-outbox-bytes", str(OUTBOX_BYTES), "--in-memory")
    rest = Rest(server.base_url, "backpressure")
    rest.write("PUT", "feed", {"start": 0})

    stalled = RawSocketStream(server.port, "/feed.json?ns=backpressure", label="stalled")
    healthy = rest.stream("feed", label="healthy")
    streams.extend([stalled, healthy])
    initial = healthy.expect("put", "/", {"start": 0})

    # The writes, and the value after each of them (as the event ids will name them).
    writes: list[tuple[str, str]] = []
    volume = _stall_volume_bytes()
    count = volume // (BACKPRESSURE_VALUE_CHARS + 60) + 1
    filler = "x" * BACKPRESSURE_VALUE_CHARS
    for i in range(count):
        key, value = f"k{i % BACKPRESSURE_KEYS:02d}", f"{i:06d}{filler}"
        rest.write("PUT", f"feed/{key}", value)
        writes.append((key, value))

    def value_after(write_count: int) -> dict:
        value: dict = {"start": 0}
        for key, item in writes[:write_count]:
            value[key] = item
        return value

    # The healthy client: every event, in order, ids consecutive.
    ids = {initial.sequence: 0}  # id -> number of writes applied
    for i, (key, value) in enumerate(writes):
        event = healthy.next_event()
        assert (event.event, event.path, event.payload) == ("put", f"/{key}", value), (
            f"healthy reader, write {i}: got {event.brief()}"
        )
        assert event.sequence == initial.sequence + 1 + i, f"write {i}: id {event.id}"
        ids[event.sequence] = i + 1

    # The stalled client wakes up.
    stalled.start()
    first = stalled.next_event()
    assert (first.event, first.path, first.payload, first.id) == ("put", "/", {"start": 0}, initial.id)
    prefix = 0
    while True:
        event = stalled.next_event()
        if event.event == "put" and event.path == "/":
            resync = event
            break
        assert prefix < count, (
            "the stalled reader received every event and no resync: its outbox never overflowed"
        )
        expected_key, expected_value = writes[prefix]
        assert (event.event, event.path, event.payload, event.sequence) == (
            "put", f"/{expected_key}", expected_value, initial.sequence + 1 + prefix
        ), f"stalled reader before the resync, event {prefix}: {event.brief()}"
        prefix += 1
    assert resync.sequence in ids, f"resync put has id {resync.id}, which is no write's"
    assert resync.sequence > initial.sequence + prefix, "resync put does not come after the events it follows"
    assert resync.payload == value_after(ids[resync.sequence]), (
        f"resync put (id {resync.id}) is not the value at that id"
    )
    print(f"backpressure: {count} writes of {BACKPRESSURE_VALUE_CHARS} chars; the stalled reader got "
          f"{prefix} events, then a resync put at id {resync.id} (last write id {initial.sequence + count})")

    # After the resync nothing is lost: later writes arrive, and the copy ends equal to GET.
    local = resync.payload
    last = resync.sequence
    for i in range(20):
        rest.write("PUT", f"feed/after{i:02d}", i)
    final = rest.get("feed")
    deadline = time.monotonic() + EVENT_TIMEOUT_SECONDS * 2
    while local != final:
        event = stalled.next_event(timeout=max(deadline - time.monotonic(), 0.001))
        assert event.event in ("put", "patch"), event.brief()
        assert event.sequence == last + 1, f"after the resync: id {event.id} follows {last}"
        last = event.sequence
        local = apply_event(local, event)
    assert last == initial.sequence + count + 20

    healthy_local = value_after(count)
    for i in range(20):
        event = healthy.expect("put", f"/after{i:02d}", i)
        healthy_local = apply_event(healthy_local, event)
    assert healthy_local == final
    rest.close()


# --------------------------------------------------------------------------------------
# 9. Disconnects
# --------------------------------------------------------------------------------------


def open_stream_count(server, rest: Rest) -> int:
    """The server's open streams, from `/.inspect/streams.json` (as the owner)."""
    response = rest.session.get(f"{server.base_url}/.inspect/streams.json",
                                headers={"Authorization": f"Bearer {OWNER}"}, timeout=HTTP_TIMEOUT_SECONDS)
    assert response.status_code == 200, response.text
    return response.json()["open"]


def test_closed_streams_are_cleaned_up(launch):
    """20 streams opened and then closed by the client: `/.inspect/streams.json` counts them
    while they are open and returns to the previous count within a few seconds."""
    server = launch()
    rest = Rest(server.base_url, "cleanup")

    def open_count() -> int:
        return open_stream_count(server, rest)

    before = open_count()
    opened = []
    try:
        for i in range(20):
            stream = rest.stream(f"room/{i % 4}", label=f"stream {i}")
            opened.append(stream)
            stream.expect("put", "/", None)
        poll_until(open_count, lambda n: n == before + 20, "open streams after opening 20")
    finally:
        for stream in opened:
            stream.close()
    poll_until(open_count, lambda n: n == before, "open streams after closing them all")

    # The server still streams normally afterwards.
    again = rest.stream("room/0")
    try:
        again.expect("put", "/", None)
        rest.write("PUT", "room/0", 1)
        again.expect("put", "/", 1)
    finally:
        again.close()
    rest.close()


def test_a_client_that_closes_its_sending_side_ends_its_stream(launch):
    """A client that half-closes its connection (shutdown of its sending side, as some HTTP
    clients do when they have nothing more to send) has gone as far as its stream is
    concerned: the server ends the stream (the response finishes and the connection closes)
    and counts it closed, without a task per stream reading the request."""
    server = launch()
    rest = Rest(server.base_url, "halfclose")

    def open_count() -> int:
        return open_stream_count(server, rest)

    before = open_count()
    host, port = server.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=HTTP_TIMEOUT_SECONDS) as raw:
        raw.sendall(b"GET /half.json?ns=halfclose HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        received = b""
        while b"event: put" not in received:
            chunk = raw.recv(65536)
            assert chunk, f"the stream ended before its first event: {received!r}"
            received += chunk
        poll_until(open_count, lambda n: n == before + 1, "open streams with the raw stream open")
        raw.shutdown(socket.SHUT_WR)
        poll_until(open_count, lambda n: n == before, "open streams after the client's half-close")
        # The server finishes the response and closes: the client reads to the end.
        raw.settimeout(10)
        while chunk := raw.recv(65536):
            received += chunk
        assert received.endswith(b"0\r\n\r\n"), received[-200:]
    rest.close()


# --------------------------------------------------------------------------------------
# 10. Permission and headers on open
# --------------------------------------------------------------------------------------


def test_stream_open_checks_read_permission_and_sends_cors_header(launch, streams):
    """Opening a stream is a read: without read access it is refused with 401 and Firebase's
    `{"error": "Permission denied"}` (and no stream); with access the answer is 200
    `text/event-stream` with `Access-Control-Allow-Origin: *`."""
    server = launch(f"--admin-token={secrets.token_urlsafe(24)}", emulator=False,
                    rules={"rules": {"public": {".read": True}}})
    rest = Rest(server.base_url, "open-compat", token=None)
    denied = rest.request("GET", "private", headers={"Accept": "text/event-stream"}, stream=True)
    try:
        assert denied.status_code == 401, denied.text
        assert denied.json() == PERMISSION_DENIED
        assert not denied.headers.get("Content-Type", "").startswith("text/event-stream")
    finally:
        denied.close()

    allowed = rest.stream("public", label="public")
    streams.append(allowed)
    assert allowed.response.headers.get("Access-Control-Allow-Origin") == "*"
    assert allowed.response.headers.get("Content-Type", "").startswith("text/event-stream")
    allowed.expect("put", "/", None)

    # A malformed query is refused on a stream exactly as on a plain GET.
    bad = {"orderBy": "score", "limitToLast": "5"}
    plain = rest.request("GET", "public", params=bad)
    streamed = rest.request("GET", "public", params=bad, headers={"Accept": "text/event-stream"})
    assert plain.status_code == 400, plain.text
    assert (streamed.status_code, streamed.json()) == (plain.status_code, plain.json())
    rest.close()


# --------------------------------------------------------------------------------------
# 11. Shutdown
# --------------------------------------------------------------------------------------


def test_graceful_shutdown_ends_open_streams(launch):
    """SIGTERM with streams open: the streams end (the connection closes cleanly after the
    events already sent) and the server exits promptly instead of waiting for the clients."""
    server = launch()
    rest = Rest(server.base_url, "shutdown")
    opened = [rest.stream(f"room/{i}", label=f"stream {i}") for i in range(3)]
    try:
        for stream in opened:
            stream.expect("put", "/", None)
        server.process.terminate()
        for stream in opened:
            assert stream.wait_closed() == [], f"{stream.label}: events before the end"
        server.process.wait(timeout=10)
    finally:
        for stream in opened:
            stream.close()
        rest.close()
