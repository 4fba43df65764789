"""A client of Firebase's realtime protocol by long polling (`/.lp`), as the browser SDK speaks
it, written from the protocol reference (§1.8 of `shared/reference/firebase-wire-protocol.md`).

It reads the server's JavaScript answers the way the browser runs them: the start response's
`pLPCommand('start', id, pw)` and `pRTLPCB(0, [hello])`, then `pRTLPCB(<n>, [...])` calls that
it puts back in order by `n`, and `pLPCommand('close'[, n])`. It sends messages as the SDK does:
JSON, base64 of the UTF-8 with the web-safe alphabet (`.` padding), cut into 1,840-character
chunks numbered across the connection and packed into polls of about 1,870 URL characters; it
keeps one poll outstanding and a second while it has something to send. `upgrade()` moves the
connection to a WebSocket as the SDK does. It shares `WireClient`'s request, reply and push
helpers.
"""

from __future__ import annotations

import base64
import http.client
import json
import queue
import random
import re
import threading
from typing import Any

from websockets.sync.client import connect

from wire_client import DEFAULT_TIMEOUT, WireClient, dumps

MAX_URL_DATA = 1870
SEGMENT_HEADER = 30
MAX_PAYLOAD = MAX_URL_DATA - SEGMENT_HEADER

CALL = re.compile(r"^pRTLPCB\((\d+),(.*)\);$")
START = re.compile(r"^pLPCommand\('start','([^']*)','([^']*)'\);$")
CLOSE = re.compile(r"^pLPCommand\('close'(?:,(\d+))?\);$")


def web_safe_base64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode("ascii").replace("=", ".")


class ScriptError(AssertionError):
    pass


class LongPollClient(WireClient):
    """One realtime connection by long polling; `request`, `reply`, `push` and the rest as on
    `WireClient`."""

    def __init__(self, port: int, namespace: str, *, host: str = "127.0.0.1", params: str = "",
                 callback: int = 7, first_request: int = 1, disconnect_frame: bool = True) -> None:
        self.host, self.port, self.namespace = host, port, namespace
        self.lock = threading.Condition()
        self.inbox: queue.Queue = queue.Queue()
        self.responses: dict[int, list] = {}
        self.next_response = 0
        self.close_after: int | None = None
        self.closed = False
        self.errors: list[str] = []
        self.outgoing: list[tuple[int, int, str]] = []
        self.next_segment = 0
        self.serial = random.randrange(100_000_000)
        self.outstanding = 0
        self.paused = False
        self.poll_count = 0
        self.poll_id = self.password = None
        # The upgrade: WebSocket messages held until the server's `n` arrives by long poll.
        self.ws = None
        self.sending_on_ws = False
        self.receiving_on_ws = False
        self.ws_held: list[dict] = []
        self.frame_page: str | None = None

        status, script = self.get(f"start=t&ser={self.serial}&cb={callback}&v=5&ns={namespace}{params}")
        assert status == 200, (status, script)
        self.start_script = script
        assert f'parent.window["pLPCommand{callback}"]' in script and f'parent.window["pRTLPCB{callback}"]' in script
        self.run_script(script)
        self.next_request = first_request
        self.messages: list[dict] = []
        self.hello = self.receive()
        assert self.hello["t"] == "c", self.hello
        if self.hello["d"]["t"] != "h":
            return  # a shutdown: nothing to poll
        assert self.poll_id and self.password, script
        if disconnect_frame:
            self.open_disconnect_frame()
        with self.lock:
            self.fill_polls()

    # -- HTTP ----------------------------------------------------------------------------

    def url(self, query: str) -> str:
        return f"/.lp?{query}"

    def get(self, query: str, timeout: float = 40) -> tuple[int, str]:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            connection.request("GET", self.url(query))
            response = connection.getresponse()
            body = response.read().decode("utf-8")
            if response.status == 200:
                assert response.getheader("Content-Type", "").startswith("application/javascript"), response.getheaders()
            return response.status, body
        finally:
            connection.close()

    def open_disconnect_frame(self) -> None:
        """The SDK's hidden iframe: its page tells the server when it goes away."""
        connection = http.client.HTTPConnection(self.host, self.port, timeout=DEFAULT_TIMEOUT)
        try:
            connection.request("GET", self.url(f"dframe=t&id={self.poll_id}&pw={self.password}&ns={self.namespace}"))
            response = connection.getresponse()
            assert response.status == 200 and response.getheader("Content-Type", "").startswith("text/html")
            self.frame_page = response.read().decode("utf-8")
        finally:
            connection.close()

    # -- the script ----------------------------------------------------------------------

    def run_script(self, script: str) -> None:
        """Runs a response as the browser would: its calls, in order."""
        for line in script.splitlines():
            line = line.strip()
            if not line or line.startswith("function ") or line.startswith("parent.window[") or line == "}":
                continue
            if match := CALL.match(line):
                self.handle_response(int(match.group(1)), json.loads(match.group(2)))
            elif match := START.match(line):
                self.poll_id, self.password = match.group(1), match.group(2)
            elif match := CLOSE.match(line):
                with self.lock:
                    number = match.group(1)
                    self.close_after = int(number) if number else -1
                    if self.close_after < self.next_response:
                        self.closed = True
                    self.lock.notify_all()
            else:
                raise ScriptError(f"unexpected line in a long-poll response: {line!r}")

    def handle_response(self, number: int, messages: list) -> None:
        """The SDK's PacketReceiver: responses are handled in number order."""
        with self.lock:
            assert number >= self.next_response and number not in self.responses, f"response {number} twice"
            self.responses[number] = messages
            while self.next_response in self.responses:
                handled = self.next_response
                for message in self.responses.pop(handled):
                    self.deliver_from_long_poll(message)
                self.next_response += 1
                if self.close_after is not None and handled >= self.close_after:
                    self.closed = True
                    break
            self.lock.notify_all()

    def deliver_from_long_poll(self, message: dict) -> None:
        if self.receiving_on_ws:
            self.errors.append(f"a message by long poll after the server's n: {message}")
            return
        if message.get("t") == "c" and message["d"].get("t") == "n":
            # The server's end of transmission: what the WebSocket held comes next.
            self.receiving_on_ws = True
            for held in self.ws_held:
                self.inbox.put(held)
            self.ws_held = []
            return
        self.inbox.put(message)

    # -- polls ---------------------------------------------------------------------------

    def fill_polls(self) -> None:
        """One poll outstanding, two while there are segments to send (caller holds the lock)."""
        while not self.closed and not self.paused and self.outstanding < (2 if self.outgoing else 1):
            self.serial += 1
            data = ""
            index = 0
            while self.outgoing:
                number, total, chunk = self.outgoing[0]
                part = f"&seg{index}={number}&ts{index}={total}&d{index}={chunk}"
                if len(chunk) + SEGMENT_HEADER + len(data) > MAX_URL_DATA:
                    break
                self.outgoing.pop(0)
                data += part
                index += 1
            query = f"id={self.poll_id}&pw={self.password}&ser={self.serial}&ns={self.namespace}{data}"
            self.outstanding += 1
            threading.Thread(target=self.poll, args=(query,), daemon=True).start()

    def poll(self, query: str) -> None:
        try:
            status, script = self.get(query)
            if status != 200:
                raise ScriptError(f"poll answered {status}: {script}")
            self.run_script(script)
        except Exception as error:  # noqa: BLE001  (the browser closes the transport)
            with self.lock:
                self.errors.append(repr(error))
                self.closed = True
                self.lock.notify_all()
        finally:
            with self.lock:
                self.outstanding -= 1
                self.poll_count += 1
                self.fill_polls()
                self.lock.notify_all()

    # -- WireClient's transport ----------------------------------------------------------

    def send(self, message: Any) -> None:
        if self.sending_on_ws:
            super().send(message)
            return
        self.send_by_long_poll(message)

    def send_by_long_poll(self, message: Any) -> None:
        encoded = web_safe_base64(dumps(message))
        chunks = [encoded[i:i + MAX_PAYLOAD] for i in range(0, len(encoded), MAX_PAYLOAD)]
        with self.lock:
            for chunk in chunks:
                self.outgoing.append((self.next_segment, len(chunks), chunk))
                self.next_segment += 1
            self.fill_polls()

    def receive(self, timeout: float = DEFAULT_TIMEOUT) -> dict:
        try:
            return self.inbox.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"nothing from the server within {timeout}s (errors: {self.errors})") from None

    def pause(self) -> None:
        """Stops polling (the poll held by the server stays held): a slow client."""
        with self.lock:
            self.paused = True

    def resume(self) -> None:
        with self.lock:
            self.paused = False
            self.fill_polls()

    def wait_closed(self, timeout: float = DEFAULT_TIMEOUT) -> bool:
        with self.lock:
            return self.lock.wait_for(lambda: self.closed, timeout)

    def close(self) -> None:
        """Leaves as a page does: polling stops and the disconnect frame's page, going away,
        tells the server (with the request it makes when it cannot send a beacon)."""
        with self.lock:
            was_closed, self.closed = self.closed, True
        if self.frame_page is not None and not was_closed:
            self.get(f"disconn=t&id={self.poll_id}&pw={self.password}", timeout=DEFAULT_TIMEOUT)
        if self.ws is not None:
            self.ws.close()

    def drop(self) -> None:
        """Stops polling and says nothing (a browser that vanished)."""
        with self.lock:
            self.closed = True

    # -- the upgrade ---------------------------------------------------------------------

    def upgrade(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Moves to a WebSocket as the SDK does: open `/.ws?s=<session>`, wait for the
        switch-ack, two pings answered, `a` on the WebSocket and `n` by long poll, then send
        only on the WebSocket; what it receives is held until the server's `n` by long poll."""
        session = self.hello["d"]["d"]["s"]
        self.ws = connect(f"ws://{self.host}:{self.port}/.ws?v=5&s={session}&ns={self.namespace}",
                          max_size=None, open_timeout=timeout, ping_interval=None)
        ack = json.loads(self.ws.recv(timeout=timeout))
        assert ack == {"t": "c", "d": {"t": "a", "d": {}}}, ack
        for _ in range(2):
            self.ws.send(dumps({"t": "c", "d": {"t": "p", "d": {}}}))
            pong = json.loads(self.ws.recv(timeout=timeout))
            assert pong == {"t": "c", "d": {"t": "o", "d": {}}}, pong
        self.ws.send(dumps({"t": "c", "d": {"t": "a", "d": {}}}))
        self.send_by_long_poll({"t": "c", "d": {"t": "n", "d": {}}})
        self.sending_on_ws = True
        threading.Thread(target=self.read_web_socket, daemon=True).start()

    def read_web_socket(self) -> None:
        frames = self.ws
        try:
            while True:
                frame = frames.recv()
                if len(frame) <= 6 and frame.isdigit():
                    frame = "".join(frames.recv() for _ in range(int(frame)))
                message = json.loads(frame)
                with self.lock:
                    if self.receiving_on_ws:
                        self.inbox.put(message)
                    else:
                        self.ws_held.append(message)
        except Exception:  # noqa: BLE001  (closed)
            return
