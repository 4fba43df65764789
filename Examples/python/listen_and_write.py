#!/usr/bin/env python3
"""Listening and writing with the official firebase-admin package, against Hearth.

Two ways to connect (see README.md):

* An ``http://`` database URL is firebase-admin's emulator mode: it signs every request with
  ``Authorization: Bearer owner`` and asks Google for nothing. Hearth accepts ``owner`` as an
  admin only when it runs with ``--emulator``:

      .build/release/hearth serve --emulator
      .venv/bin/python Examples/python/listen_and_write.py

* An ``https://`` URL (Hearth behind a TLS proxy, no ``--emulator``) is the SDK's production
  mode: it sends the access token its credential hands out. Here the credential hands out
  Hearth's admin token (``--token`` or ``HEARTH_TOKEN``):

      HEARTH_TOKEN=$(cat hearth-data/admin-token) .venv/bin/python \
          Examples/python/listen_and_write.py --url https://hearth.example.com

The script works under ``/python-example`` in the database (it clears that location first):
it starts a listener there, then sets, pushes, updates and queries, printing every event the
listener receives, and closes the listener after ``--seconds``. Exit status 0 when the
listener and the query saw the writes, 1 otherwise (including a server that cannot be
reached or refuses the credential).
"""

from __future__ import annotations

import argparse
import os
import queue
import sys
import threading
import time
import traceback
from urllib.parse import urlsplit

import firebase_admin
import google.auth.credentials
from firebase_admin import credentials, db, exceptions

DEFAULT_URL = "http://127.0.0.1:9000/?ns=default"
BASE = "/python-example"


class EmulatorOnly(credentials.Base):
    """A credential that refuses to be used.

    With an http:// databaseURL the SDK never asks its credential for anything (it sends
    `owner`). Passing this one instead of the default (Google's application default
    credentials) makes sure it never tries to reach Google by mistake.
    """

    def get_credential(self):
        raise RuntimeError("an http:// database URL never needs a credential")


class HearthAdminToken(credentials.Base):
    """A credential that hands the SDK Hearth's admin token as its access token.

    In production mode (an https:// databaseURL) the SDK sends
    `Authorization: Bearer <access token>` with every request. Hearth refuses Google's OAuth2
    access tokens but takes its own admin token in that header, so this credential gives the
    SDK the admin token and never refreshes it (the admin token does not expire).
    """

    class _StaticToken(google.auth.credentials.Credentials):
        def __init__(self, token: str) -> None:
            super().__init__()
            self.token = token

        def refresh(self, request) -> None:
            pass

    def __init__(self, token: str) -> None:
        self._credential = self._StaticToken(token)

    def get_credential(self):
        return self._credential


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("HEARTH_DATABASE_URL", DEFAULT_URL),
                        help="http://<host>:<port>/?ns=<namespace> for a server in emulator "
                             "mode, or https://<host> for one behind a TLS proxy "
                             "(HEARTH_DATABASE_URL; default %(default)s)")
    parser.add_argument("--token", default=os.environ.get("HEARTH_TOKEN"),
                        help="the admin token, for an https:// URL (default: HEARTH_TOKEN)")
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="how long to listen after the writes (default %(default)s)")
    args = parser.parse_args(argv)
    url = urlsplit(args.url)
    if url.scheme == "http":
        credential = EmulatorOnly()
        refused_hint = ("Is the server running with --emulator? Without it Hearth does not "
                        "accept the SDK's `owner` token.")
    elif url.scheme == "https":
        if not args.token:
            parser.error("an https:// URL needs the admin token (--token or HEARTH_TOKEN)")
        credential = HearthAdminToken(args.token.strip())
        refused_hint = "Is --token (HEARTH_TOKEN) the server's admin token?"
    else:
        parser.error("--url must be an http:// or https:// URL")
    # Keep the SDK's HTTP sessions off any proxy for a server on this machine.
    if url.hostname in ("127.0.0.1", "localhost", "::1"):
        os.environ["NO_PROXY"] = ",".join(filter(None, [os.environ.get("NO_PROXY"),
                                                        url.hostname]))

    app = firebase_admin.initialize_app(
        credential, {"databaseURL": args.url, "httpTimeout": 30}, name="hearth-example")
    try:
        return run(app, args.seconds)
    except exceptions.FirebaseError as error:
        print(f"listen_and_write.py: {error.code}: {error}", file=sys.stderr)
        if error.code == "UNAUTHENTICATED" or "auth token" in str(error):
            print(refused_hint, file=sys.stderr)
        elif error.code == "UNAVAILABLE":
            print("Is Hearth running? Start it with `hearth serve --emulator`.", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"listen_and_write.py: cannot reach {args.url}: {error}", file=sys.stderr)
        return 1
    finally:
        firebase_admin.delete_app(app)


def close_listener(registration: db.ListenerRegistration, location: db.Reference) -> None:
    """Closes a listener without waiting for the server's next keep-alive.

    `ListenerRegistration.close()` closes the connection and then waits for the SDK's reader
    thread, which only notices once something more arrives on the stream: the next
    keep-alive (every 30 s, on Hearth as on Firebase) or an event. So close on another thread,
    then write once under the location to wake the reader. The reader then ends with an
    AttributeError inside the SDK (it reads from the response it was told to close); that
    error is expected and not printed.
    """
    previous_hook = threading.excepthook

    def quiet_reader_exit(hook_args):
        frames = traceback.extract_tb(hook_args.exc_traceback)
        if not (hook_args.exc_type is AttributeError
                and any(frame.name == "_start_listen" for frame in frames)):
            previous_hook(hook_args)

    threading.excepthook = quiet_reader_exit
    closer = threading.Thread(target=registration.close, daemon=True)
    closer.start()
    location.child("listener_closed_at").set({".sv": "timestamp"})
    closer.join(timeout=10)
    threading.excepthook = previous_hook


def run(app: firebase_admin.App, seconds: float) -> int:
    base = db.reference(BASE, app=app)
    base.delete()                                   # start from an empty location

    # --- listen ---------------------------------------------------------------------------
    # The SDK calls the callback on a thread of its own; hand the events to this thread so
    # the output stays in order.
    events: queue.Queue = queue.Queue()
    first_event = threading.Event()

    def on_event(event: db.Event) -> None:
        events.put((event.event_type, event.path, event.data))
        first_event.set()

    registration = base.listen(on_event)
    # The first event is the location's current value ("put" at "/": None here). Writing
    # only after it arrived means each write shows up as an event of its own.
    if not first_event.wait(timeout=10):
        print("no initial event from the listener within 10 s", file=sys.stderr)
        registration.close()
        return 1

    def drain() -> int:
        count = 0
        while True:
            try:
                event_type, path, data = events.get(timeout=0.3)
            except queue.Empty:
                return count
            print(f"  event: {event_type:<5} {path:<32} {data!r}")
            count += 1

    try:
        print(f"Listening to {BASE}")
        drain()

        # --- set ------------------------------------------------------------------------------
        print("set    line = {...}")
        base.child("line").set({"name": "Line 1", "state": "running", "shift": 1})
        seen = drain()

        # --- push -----------------------------------------------------------------------------
        readings = base.child("readings")
        keys = []
        for station, temperature in [("press", 41.5), ("oven", 181.0), ("press", 42.25),
                                     ("cooler", 4.5), ("oven", 179.5), ("press", 43.0),
                                     ("cooler", 4.75)]:
            ref = readings.push({"station": station, "temperature_c": temperature,
                                 "timestamp": {".sv": "timestamp"}})
            keys.append(ref.key)
            time.sleep(0.005)                       # distinct server timestamps
        print(f"push   readings: {len(keys)} records ({keys[0]} ... {keys[-1]})")
        seen += drain()

        # --- update ---------------------------------------------------------------------------
        print("update line: state, operator; multi-path: line/shift, readings/<first>/checked")
        base.child("line").update({"state": "paused", "operator": "ada"})
        base.update({"line/shift": 2, f"readings/{keys[0]}/checked": True})
        seen += drain()

        # --- query ----------------------------------------------------------------------------
        # Ordering by a child needs ".indexOn": "timestamp" in the rules at /python-example/
        # readings on a server with rules; in emulator mode (and for the admin) Hearth
        # answers without one, as Firebase's emulator does.
        latest = readings.order_by_child("timestamp").limit_to_last(5).get()
        print("query  readings ordered by timestamp, last 5:")
        for key, value in latest.items():
            print(f"  {key}  {value['timestamp']}  {value['station']:<6} "
                  f"{value['temperature_c']:>6} °C")

        # --- keep listening -------------------------------------------------------------------
        print(f"listening {seconds:g} s more...")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            seen += drain()
    finally:
        close_listener(registration, base)
    print(f"closed the listener after {seen} events from the writes")

    line = base.child("line").get()
    print(f"line is now {line}")
    ok = seen >= 1 + len(keys) and line == {"name": "Line 1", "operator": "ada", "shift": 2,
                                            "state": "paused"} and len(latest) == 5
    if not ok:
        print("unexpected result: the listener or the query did not see the writes",
              file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
