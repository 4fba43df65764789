"""A client of Firebase's realtime protocol (v5) over WebSocket, written from the protocol
reference (`shared/reference/firebase-wire-protocol.md`), for the realtime compatibility tests.

It speaks the wire format as the JS SDK does: JSON envelopes as text frames, messages over
16,384 characters split into a count frame and slices, requests numbered from 1, and it keeps
replies and pushes apart while preserving their order. It also has the SDKs' transaction hash
(`node_hash`) and their JWT helpers for the emulator (`mock_user_token`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct
import time
from typing import Any

from websockets.sync.client import connect

SLICE = 16384
DEFAULT_TIMEOUT = 5.0


def dumps(message: Any) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


class WireClient:
    """One realtime connection: `request` numbers and sends, `reply` waits for the answer
    (keeping the pushes met on the way), `push` takes the next push."""

    def __init__(self, port: int, namespace: str, *, host: str = "127.0.0.1", params: str = "",
                 headers: dict[str, str] | None = None, first_request: int = 1, ssl_context=None) -> None:
        scheme = "wss" if ssl_context is not None else "ws"
        url = f"{scheme}://{host}:{port}/.ws?v=5{params}&ns={namespace}"
        self.ws = connect(url, max_size=None, additional_headers=headers or {}, open_timeout=DEFAULT_TIMEOUT,
                          ping_interval=None, ssl=ssl_context)
        self.next_request = first_request
        self.messages: list[dict] = []   # received, not yet consumed (in order)
        self.hello = self.receive()
        assert self.hello["t"] == "c" and self.hello["d"]["t"] == "h", self.hello

    # -- frames --------------------------------------------------------------------------

    def send(self, message: Any) -> None:
        """Sends one message, split as the SDKs split it."""
        text = dumps(message)
        if len(text) <= SLICE:
            self.ws.send(text)
            return
        slices = [text[i:i + SLICE] for i in range(0, len(text), SLICE)]
        self.ws.send(str(len(slices)))
        for part in slices:
            self.ws.send(part)

    def receive(self, timeout: float = DEFAULT_TIMEOUT) -> dict:
        """The next message from the server, frames joined as the JS SDK joins them."""
        frame = self.ws.recv(timeout=timeout)
        assert isinstance(frame, str), f"binary frame {frame!r}"
        assert frame not in ("", " ", "0"), f"the server sent {frame!r}, which wedges the JS SDK"
        if len(frame) <= 6 and frame.isdigit():
            count = int(frame)
            frame = "".join(self.ws.recv(timeout=timeout) for _ in range(count))
        return json.loads(frame)

    # -- requests ------------------------------------------------------------------------

    def request(self, action: str, body: Any) -> int:
        number = self.next_request
        self.next_request += 1
        self.send({"t": "d", "d": {"r": number, "a": action, "b": body}})
        return number

    def _take(self, predicate, timeout: float) -> dict:
        for index, message in enumerate(self.messages):
            if predicate(message):
                return self.messages.pop(index)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"nothing matching within {timeout}s; held: {self.messages}")
            message = self.receive(timeout=left)
            if predicate(message):
                return message
            self.messages.append(message)

    def reply(self, number: int, timeout: float = DEFAULT_TIMEOUT) -> dict:
        """The body (`{"s":..., "d":...}`) of the reply to request `number`."""
        message = self._take(lambda m: m["t"] == "d" and m["d"].get("r") == number, timeout)
        return message["d"]["b"]

    def call(self, action: str, body: Any, timeout: float = DEFAULT_TIMEOUT) -> dict:
        return self.reply(self.request(action, body), timeout)

    def push(self, timeout: float = DEFAULT_TIMEOUT) -> dict:
        """The next push (`{"a":..., "b":...}`), in order."""
        message = self._take(lambda m: m["t"] == "d" and "r" not in m["d"], timeout)
        return message["d"]

    def pushes_now(self, wait: float = 0.3) -> list[dict]:
        """Every push that arrives within `wait` seconds (and those held)."""
        found = []
        deadline = time.monotonic() + wait
        while True:
            try:
                found.append(self.push(timeout=max(0.01, deadline - time.monotonic())))
            except TimeoutError:
                return found

    def in_order(self, count: int, timeout: float = DEFAULT_TIMEOUT) -> list[dict]:
        """The next `count` data messages, pushes and replies alike, in arrival order."""
        result = []
        while len(result) < count:
            if self.messages:
                result.append(self.messages.pop(0))
            else:
                result.append(self.receive(timeout))
        return [m["d"] for m in result if m["t"] == "d"]

    # -- conveniences --------------------------------------------------------------------

    def listen(self, path: str, query: dict | None = None, tag: int | None = None) -> dict:
        body: dict[str, Any] = {"p": path, "h": ""}
        if query is not None:
            body["q"] = query
            body["t"] = tag
        return self.call("q", body)

    def put(self, path: str, value: Any, hash: str | None = None) -> dict:
        body = {"p": path, "d": value}
        if hash is not None:
            body["h"] = hash
        return self.call("p", body)

    def close(self) -> None:
        self.ws.close()

    def drop(self) -> None:
        """Ends the TCP connection without a WebSocket close (a dropped network)."""
        sock = self.ws.socket
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


# -- the SDKs' transaction hash (reference §4.2) ---------------------------------------------

def _num_text(x: float) -> str:
    return struct.pack(">d", float(x)).hex()


def _prio_text(p: Any) -> str:
    if isinstance(p, (int, float)) and not isinstance(p, bool):
        return "number:" + _num_text(p)
    return "string:" + p


def _is_int_key(key: str) -> bool:
    body = key[1:] if key.startswith("-") else key
    if not body.isdigit() or not (1 <= len(body.lstrip("0") or "0") <= 10):
        return False
    value = int(key)
    return -(2 ** 31) <= value <= 2 ** 31 - 1


def key_order(key: str):
    """Firebase's key order: 32-bit integer keys first (numerically, then shorter first), then
    the others by UTF-16 code units."""
    if _is_int_key(key):
        return (0, int(key), len(key), "")
    return (1, 0, 0, key.encode("utf-16-be"))


def _priority_order(priority: Any):
    if priority is None:
        return (0, 0, "")
    if isinstance(priority, (int, float)):
        return (1, priority, "")
    return (2, 0, priority)


def _split(value: Any) -> tuple[Any, Any]:
    """(value without priority, priority) of an export-format value."""
    if isinstance(value, dict):
        priority = value.get(".priority")
        if ".value" in value:
            return value[".value"], priority
        return {k: v for k, v in value.items() if k != ".priority"}, priority
    return value, None


def node_hash(value: Any) -> str:
    """The hash the SDKs send with a transaction's put, of an export-format value."""
    value, priority = _split(value)
    if isinstance(value, list):
        value = {str(i): v for i, v in enumerate(value)}
    if value is None or value == {}:
        return ""
    prefix = "" if priority is None else "priority:" + _prio_text(priority) + ":"
    if isinstance(value, dict):
        children = [(k, v) for k, v in value.items() if node_hash(v) != ""]
        children.sort(key=lambda kv: (_priority_order(_split(kv[1])[1]), key_order(kv[0])))
        text = prefix + "".join(":" + k + ":" + node_hash(v) for k, v in children)
        if text == "":
            return ""
    elif isinstance(value, bool):
        text = prefix + "boolean:" + ("true" if value else "false")
    elif isinstance(value, (int, float)):
        text = prefix + "number:" + _num_text(value)
    else:
        text = prefix + "string:" + value
    return base64.b64encode(hashlib.sha1(text.encode("utf-8", "surrogatepass")).digest()).decode()


def mock_user_token(uid: str, project: str = "demo-project", **claims: Any) -> str:
    """The unsigned token `createMockUserToken` builds for the emulator."""
    def part(obj: Any) -> str:
        return base64.urlsafe_b64encode(dumps(obj).encode()).decode().rstrip("=")
    payload = {"iss": f"https://securetoken.google.com/{project}", "aud": project, "iat": 0, "exp": 3600,
               "auth_time": 0, "sub": uid, "user_id": uid,
               "firebase": {"sign_in_provider": "custom", "identities": {}}, **claims}
    return part({"alg": "none", "type": "JWT"}) + "." + part(payload) + "."
