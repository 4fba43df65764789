"""Server values: `{".sv": "timestamp"}` and `{".sv": {"increment": n}}`."""

from __future__ import annotations

import time

from compat_helpers import assert_json_identical

TIMESTAMP = {".sv": "timestamp"}
# The server shares this machine's clock; allow for scheduling and clock granularity.
CLOCK_SLACK_MS = 2_000


def now_ms() -> int:
    """Wall-clock time in milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


def assert_recent_timestamp(value, before: int, after: int) -> None:
    """Asserts `value` is an int of milliseconds taken between `before` and `after`."""
    assert type(value) is int, f"timestamp is not an int: {value!r}"
    assert before - CLOCK_SLACK_MS <= value <= after + CLOCK_SLACK_MS, (
        f"timestamp {value} not within [{before}, {after}] (+/- {CLOCK_SLACK_MS} ms)"
    )


def test_set_with_server_timestamp_stores_now_in_ms(root):
    """The placeholder is replaced by the server's current time in milliseconds."""
    ref = root.child("event")
    before = now_ms()
    ref.set({"t": TIMESTAMP, "label": "created"})
    after = now_ms()

    stored = ref.get()
    assert sorted(stored) == ["label", "t"]
    assert stored["label"] == "created"
    assert_recent_timestamp(stored["t"], before, after)


def test_server_timestamps_in_one_write_are_equal(root):
    """All placeholders in one write resolve to the same instant."""
    ref = root.child("event")
    before = now_ms()
    ref.set({"a": TIMESTAMP, "nested": {"b": TIMESTAMP}, "list": [TIMESTAMP]})
    after = now_ms()

    stored = ref.get()
    assert_recent_timestamp(stored["a"], before, after)
    instant = stored["a"]
    assert_json_identical(stored, {"a": instant, "nested": {"b": instant}, "list": [instant]})


def test_server_timestamp_in_update_and_push(root):
    """Placeholders resolve in `update` (multi-path) and `push` as well."""
    before = now_ms()
    root.update({"meta/updated": TIMESTAMP, "meta/by": "test"})
    pushed = root.child("log").push({"at": TIMESTAMP})
    after = now_ms()

    meta = root.child("meta").get()
    assert meta["by"] == "test"
    assert_recent_timestamp(meta["updated"], before, after)
    assert_recent_timestamp(pushed.child("at").get(), before, after)


def test_server_timestamp_as_a_leaf_value(root):
    """A placeholder written directly at a location becomes that location's value."""
    ref = root.child("lastSeen")
    before = now_ms()
    ref.set(TIMESTAMP)
    after = now_ms()
    assert_recent_timestamp(ref.get(), before, after)


def test_server_increment_adds_to_the_stored_number(root):
    """`increment` adds to an existing number and treats a missing value as 0."""
    ref = root.child("stats")
    ref.set({"views": 10})
    ref.update({"views": {".sv": {"increment": 5}}, "likes": {".sv": {"increment": 2}}})
    assert_json_identical(ref.get(), {"views": 15, "likes": 2})

    ref.child("views").set({".sv": {"increment": -20}})
    assert_json_identical(ref.child("views").get(), -5)
